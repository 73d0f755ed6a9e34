"""A job's queue comes from an allowlist; any other name is a 422 that changes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis

from launcher.net import wait_until
from tests.support import Platform, WebService, WorkerService, http
from tests.support.ws import watch_to_end

SIDE_QUEUE = "side-queue"


@pytest.fixture(scope="module")
def side_worker(platform: Platform) -> Iterator[WorkerService]:
    """A worker that consumes only a queue of its own."""
    w = WorkerService(platform, concurrency=1, name="side-worker", queues=(SIDE_QUEUE,))
    w.start()
    yield w
    w.stop(timeout=10)


def submit(url: str, queue: str) -> Any:
    body = {"agent": "echo", "input": {"text": "q", "steps": 0}, "queue": queue}
    return http.post(f"{url}/api/jobs", json=body, timeout=15)


def job_count(url: str) -> int:
    counts = http.get(f"{url}/api/jobs", params={"limit": 1}, timeout=10).json()["counts"]
    return sum(counts.values())


def worker_online(url: str, host: str) -> bool:
    workers = http.get(f"{url}/api/monitor/workers", timeout=5).json()["workers"]
    return any(w["hostname"] == host and w["online"] for w in workers)


def ran_on(url: str, job_id: str) -> str:
    events = watch_to_end(url, job_id, timeout=30)
    assert events[-1]["state"] == "SUCCESS", events[-1]
    return str(next(e["data"]["worker"] for e in events if e["type"] == "job.started"))


@pytest.mark.parametrize(
    "queue", ["agentdeck:dirty", "nobody-consumes-this", "unacked", "a b", "../x", "q" * 101]
)
def test_a_queue_outside_the_allowlist_is_refused_and_changes_nothing(
    web: WebService, redis_client: redis.Redis, queue: str
) -> None:
    # given the jobs stored and what Redis holds under that name
    before, key_type = job_count(web.url), redis_client.type(queue)
    # when a job names that queue
    r = submit(web.url, queue)
    # then it is a 422 naming the field and listing the allowed queues
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["field"] == "queue" and "celery" in error["allowed"]
    assert "celery" in error["message"]
    # and no job was stored, nothing was written under that name
    assert job_count(web.url) == before
    assert redis_client.type(queue) == key_type


def test_the_default_queue_and_a_known_workers_queue_are_accepted(
    web: WebService, worker: WorkerService, side_worker: WorkerService
) -> None:
    # given a worker that consumes a queue of its own, shown online
    assert wait_until(lambda: worker_online(web.url, side_worker.hostname), 20, interval=0.2)
    # when jobs name that queue and the default one
    side, default = submit(web.url, SIDE_QUEUE), submit(web.url, "celery")
    # then both are accepted and run on the workers of those queues
    assert side.status_code == 202 and default.status_code == 202, (side.text, default.text)
    assert ran_on(web.url, side.json()["id"]) == side_worker.hostname
    assert ran_on(web.url, default.json()["id"]) == worker.hostname


def test_configured_queues_are_the_only_ones_allowed(
    platform: Platform, side_worker: WorkerService
) -> None:
    # given a web server configured with AGENTDECK_QUEUES
    web = WebService(platform, name="queues-web", extra_env={"AGENTDECK_QUEUES": SIDE_QUEUE})
    web.start()
    try:
        # when a job names the default queue, which is not configured
        refused = submit(web.url, "celery")
        # then it is refused, listing exactly the configured queues
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"]["allowed"] == [SIDE_QUEUE]
        # and a job for the configured queue is accepted and runs
        accepted = submit(web.url, SIDE_QUEUE)
        assert accepted.status_code == 202, accepted.text
        assert ran_on(web.url, accepted.json()["id"]) == side_worker.hostname
    finally:
        web.stop(timeout=5)
