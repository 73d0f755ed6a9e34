"""Nothing holds a worker forever: bounded inputs, and a time limit on every run."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from launcher.net import wait_until
from tests.support import Platform, WebService, WorkerService, http
from tests.support.ws import watch_to_end

LIMITS_QUEUE = "limits-queue"


@pytest.fixture(scope="module")
def lone_worker(platform: Platform) -> Iterator[WorkerService]:
    """A worker with one pool process, on a queue of its own: a run that held that
    process would keep every later job of the queue waiting."""
    w = WorkerService(platform, concurrency=1, name="limits-worker", queues=(LIMITS_QUEUE,))
    w.start()
    yield w
    w.stop(timeout=10)


@pytest.fixture
def online_lone_worker(web: WebService, lone_worker: WorkerService) -> WorkerService:
    lone_worker.ensure_running()

    def online() -> bool:
        workers = http.get(f"{web.url}/api/monitor/workers", timeout=5).json()["workers"]
        return any(w["hostname"] == lone_worker.hostname and w["online"] for w in workers)

    assert wait_until(online, 20, interval=0.2)
    return lone_worker


def submit(url: str, agent: str, **input: Any) -> str:
    body = {"agent": agent, "input": input, "queue": LIMITS_QUEUE}
    r = http.post(f"{url}/api/jobs", json=body, timeout=15)
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


def final_event(url: str, job_id: str, timeout: float = 20) -> dict[str, Any]:
    return watch_to_end(url, job_id, timeout=timeout)[-1]


@pytest.mark.parametrize("agent", ["overrun", "stubborn"])
def test_a_run_past_its_time_limit_fails_and_the_worker_takes_the_next_job(
    web: WebService, online_lone_worker: WorkerService, agent: str
) -> None:
    # given an agent whose time limit is 1 s, asked to run for 30 s on a one-process worker
    # (overrun stops at the soft limit; stubborn swallows it and is killed at the hard one)
    job_id = submit(web.url, agent, seconds=30)
    # when it runs
    end = final_event(web.url, job_id)
    # then it fails with a clear "time limit exceeded" error well before its 30 s
    assert end["type"] == "job.failed" and end["state"] == "FAILURE", end
    assert "time limit exceeded" in end["data"]["error"]
    # and the worker's process is free: the next job runs to the end
    next_id = submit(web.url, "echo", text="next", steps=1, delay=0)
    assert final_event(web.url, next_id)["state"] == "SUCCESS"
    assert http.get(f"{web.url}/api/jobs/{job_id}", timeout=10).json()["state"] == "FAILURE"


def test_the_default_run_time_limit_comes_from_the_setting(
    platform: Platform, online_lone_worker: WorkerService
) -> None:
    # given a web server whose AGENTDECK_RUN_TIME_LIMIT is 1 s
    web = WebService(platform, name="limits-web", extra_env={"AGENTDECK_RUN_TIME_LIMIT": "1"})
    web.start()
    try:
        # when an agent without a limit of its own is asked to sleep for 30 s
        job_id = submit(web.url, "sleep", seconds=30)
        # then its run is cut off at about 1 s
        end = final_event(web.url, job_id)
        assert end["state"] == "FAILURE" and "time limit exceeded" in end["data"]["error"]
        assert "1 s" in end["data"]["error"]
    finally:
        web.stop(timeout=5)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ('{"agent": "echo", "input": {"text": "x", "steps": 1e23}}', "steps"),
        ('{"agent": "echo", "input": {"text": "x", "steps": 1001}}', "steps"),
        ('{"agent": "echo", "input": {"text": "x", "delay": 61}}', "delay"),
        ('{"agent": "sleep", "input": {"seconds": 1e9}}', "seconds"),
    ],
)
def test_unbounded_or_non_finite_inputs_are_refused(web: WebService, body: str, field: str) -> None:
    # given the number of jobs stored
    before = sum(http.get(f"{web.url}/api/jobs", timeout=10).json()["counts"].values())
    # when an input asks for too much, or for infinity
    r = http.post(
        f"{web.url}/api/jobs", data=body, headers={"Content-Type": "application/json"}, timeout=10
    )
    # then it is a 422 naming the field, and nothing is stored
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == field
    assert sum(http.get(f"{web.url}/api/jobs", timeout=10).json()["counts"].values()) == before


@pytest.mark.parametrize("number", ["1e999", "NaN", "-Infinity"])
def test_non_finite_inputs_are_not_json_this_api_takes(web: WebService, number: str) -> None:
    # when an input asks for infinity, then the body itself is refused and nothing stored
    before = sum(http.get(f"{web.url}/api/jobs", timeout=10).json()["counts"].values())
    body = '{"agent": "echo", "input": {"text": "x", "delay": ' + number + "}}"
    r = http.post(
        f"{web.url}/api/jobs", data=body, headers={"Content-Type": "application/json"}, timeout=10
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_json", r.text
    assert sum(http.get(f"{web.url}/api/jobs", timeout=10).json()["counts"].values()) == before
