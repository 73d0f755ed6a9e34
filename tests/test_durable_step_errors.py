"""A recorded step that failed, handled by the agent, across a resumption."""

from __future__ import annotations

import uuid

import redis

from launcher.net import wait_until
from tests.support import WebService, WorkerService, http


def test_a_handled_step_failure_is_the_same_exception_when_the_run_resumes(
    web: WebService, worker: WorkerService, redis_client: redis.Redis
) -> None:
    # given a run whose step failed, which the agent caught, and which then asked
    marker = uuid.uuid4().hex
    r = http.post(
        f"{web.url}/api/jobs", json={"agent": "handles_a_failed_step", "input": {"marker": marker}}
    )
    assert r.status_code == 202, r.text
    url = f"{web.url}/api/jobs/{r.json()['id']}"
    assert wait_until(
        lambda: any(s["status"] == "waiting" for s in http.get(url).json()["steps"]), 30
    ), http.get(url).json()
    # when it is answered and resumes, replaying the failed step
    assert http.post(f"{url}/input", json={"answer": "yes"}).status_code == 202
    assert wait_until(lambda: http.get(url).json()["state"] in ("SUCCESS", "FAILURE"), 30)
    # then the failed step ran once, and both runs caught the same exception
    assert redis_client.get(f"durable:{marker}:flaky") == "1"
    caught = redis_client.lrange(f"durable:{marker}:caught", 0, -1)
    assert len(caught) == 2 and caught[0] == caught[1], caught
