"""Worker faults: a pool child killed, a whole worker SIGKILLed. No job stays STARTED."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support import Platform, WebService, WorkerService, http
from tests.support.ws import WsClient, is_final, watch_to_end
from workers.settings import get_settings


def submit(url: str, agent: str, queue: str | None = None, **input: Any) -> str:
    body: dict[str, Any] = {"agent": agent, "input": input}
    if queue:
        body["queue"] = queue
    r = http.post(f"{url}/api/jobs", json=body, timeout=10)
    assert r.status_code == 202, r.text
    return r.json()["id"]


def test_pool_child_killed_ends_failure_with_the_worker_lost_error(
    web: WebService, worker: WorkerService
) -> None:
    # given an agent whose policy is to fail when its worker dies
    job_id = submit(web.url, "crash")
    # when its pool child is killed mid-run
    events = watch_to_end(web.url, job_id)
    # then the job shows job.lost and ends FAILURE with the worker-lost error
    types = [e["type"] for e in events]
    assert "job.lost" in types
    assert events[-1]["state"] == "FAILURE"
    assert "WorkerLostError" in events[-1]["data"]["error"]


def test_a_job_that_kills_its_worker_every_time_stops_after_the_cap(
    web: WebService, worker: WorkerService
) -> None:
    # given an agent that kills its process on every run, requeued at most twice
    job_id = submit(web.url, "crash_always")
    # when it runs
    events = watch_to_end(web.url, job_id, timeout=90)
    # then it ran 1 + 2 times, its fourth delivery was refused, and it ended FAILURE
    types = [e["type"] for e in events]
    assert types.count("job.lost") == 3
    assert types.count("job.started") == 4
    assert events[-1]["state"] == "FAILURE"
    assert "giving up" in events[-1]["data"]["error"]


@pytest.fixture
def lonely_worker(platform: Platform) -> Iterator[WorkerService]:
    """A worker of its own on a queue of its own, for a test to kill."""
    queue = f"faults-{uuid.uuid4().hex[:6]}"
    service = WorkerService(platform, name=f"worker-{queue}", queues=(queue,), concurrency=1)
    service.queue = queue  # type: ignore[attr-defined]
    service.start()
    yield service
    service.stop()


def test_worker_sigkilled_mid_job_is_lost_then_requeued_and_completes(
    web: WebService, platform: Platform, lonely_worker: WorkerService
) -> None:
    # given a job running on a worker of its own
    queue = lonely_worker.queue  # type: ignore[attr-defined]
    job_id = submit(web.url, "sleep", queue=queue, seconds=3)
    ws = WsClient(web.url)
    ws.subscribe_job(job_id)
    ws.events_until(job_id, lambda e: e["type"] == "job.started", timeout=30)
    # when the whole worker is SIGKILLed
    lonely_worker.kill()
    killed_at = time.monotonic()
    lost = ws.events_until(job_id, lambda e: e["type"] == "job.lost", timeout=20)[-1]
    lost_after = time.monotonic() - killed_at
    # then job.lost comes within heartbeat expiry + 2 s, and the job is requeued
    assert lost_after < get_settings().worker_expiry_seconds + 2 + 2  # + one beat interval
    assert lost["data"]["requeued"] is True and lost["state"] == "PENDING"
    # and a worker that comes back runs it to the end
    lonely_worker.start()
    rest = ws.events_until(job_id, is_final, timeout=30)
    ws.close()
    assert rest[-1]["state"] == "SUCCESS"
    assert [e["type"] for e in rest].count("job.started") == 1
