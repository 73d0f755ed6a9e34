"""The web process's broker connections: a burst must not starve them, a starved pool is a 503."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
from flask import Flask
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from launcher.net import wait_until
from tests.support import Platform, WebService, WorkerService, http
from tests.support.ws import watch_to_end
from webapp import create_app
from webapp.services import Services
from workers.models import Job

BURST = 50


@pytest.fixture
def own_web(platform: Platform) -> Iterator[WebService]:
    """A web server of this test's own: a wedged one must not spoil the session's."""
    web = WebService(platform, name="burst-web")
    web.start()
    yield web
    web.stop(timeout=5)


def worker_online(url: str, host: str) -> bool:
    workers = http.get(f"{url}/api/monitor/workers", timeout=5).json()["workers"]
    return any(w["hostname"] == host and w["online"] for w in workers)


def get_workers(url: str) -> int | str:
    try:
        return http.get(f"{url}/api/workers", timeout=30).status_code
    except requests.RequestException as exc:  # a hang shows as a timeout
        return type(exc).__name__


def submit(url: str, **input: Any) -> str:
    r = http.post(f"{url}/api/jobs", json={"agent": "echo", "input": input}, timeout=15)
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


def test_a_burst_of_worker_inspections_leaves_submissions_working(
    own_web: WebService, worker: WorkerService
) -> None:
    # given a worker the web shows online
    assert wait_until(lambda: worker_online(own_web.url, worker.hostname), 20, interval=0.2)
    # when 50 clients ask for the workers' inspection at once
    with ThreadPoolExecutor(BURST) as pool:
        answers = list(pool.map(lambda _: get_workers(own_web.url), range(BURST)))
    # then every one of them is answered
    assert answers == [200] * BURST, answers
    # and jobs submitted afterwards are sent and run to the end
    job_ids = [submit(own_web.url, text=f"after the burst {i}", steps=1, delay=0) for i in range(5)]
    for job_id in job_ids:
        assert watch_to_end(own_web.url, job_id, timeout=30)[-1]["state"] == "SUCCESS"


@pytest.fixture
def app() -> Flask:
    """An in-process web app on the session's real Redis and SQL (no background threads)."""
    return create_app(background=False)


@pytest.fixture
def app_svc(app: Flask) -> Services:
    svc: Services = app.extensions["agentdeck"]
    return svc


@pytest.fixture
def started_job(app_svc: Services) -> Iterator[str]:
    """A job row in STARTED (one that a cancel applies to); removed afterwards."""
    now, job_id = time.time(), f"starved-{uuid.uuid4()}"
    with Session(app_svc.engine) as s, s.begin():
        s.add(Job(id=job_id, name="agentdeck.run_agent", agent="sleep", state="STARTED",
                  input={"seconds": 1}, retries=0, last_seq=0,
                  created_at=now, updated_at=now))  # fmt: skip
    yield job_id
    with Session(app_svc.engine) as s, s.begin():
        s.execute(delete(Job).where(Job.id == job_id))


def test_a_starved_broker_pool_is_a_503_not_a_hang_and_stores_nothing(
    app: Flask, app_svc: Services, started_job: str, worker: WorkerService
) -> None:
    # given the web app's broker pool all taken, and a short wait for it
    svc, running_id = app_svc, started_job
    client, headers = app.test_client(), http.auth_headers()
    saved_timeout = svc.celery.conf.broker_pool_acquire_timeout
    svc.celery.conf.broker_pool_acquire_timeout = 0.5
    held = [svc.celery.pool.acquire(block=False) for _ in range(svc.celery.conf.broker_pool_limit)]
    try:
        before = job_count(svc)
        # when a job is submitted, a job cancelled and a task revoked
        started = time.monotonic()
        submitted = client.post(
            "/api/jobs", json={"agent": "echo", "input": {"text": "x"}}, headers=headers
        )
        cancelled = client.post(f"/api/jobs/{running_id}/cancel", headers=headers)
        revoked = client.post(f"/api/task/revoke/{running_id}", headers=headers)
        took = time.monotonic() - started
        # then each is a clear 503 within the bounded waits, and no job row was left behind
        for r in (submitted, cancelled, revoked):
            assert r.status_code == 503, r.get_data(as_text=True)
            assert r.get_json()["error"]["code"] == "broker_busy"
        assert took < 5, took
        assert job_count(svc) == before
    finally:
        for conn in held:
            conn.release()
        svc.celery.conf.broker_pool_acquire_timeout = saved_timeout
    # and once connections are free again, submissions go through
    r = client.post(
        "/api/jobs", json={"agent": "echo", "input": {"text": "x", "steps": 0}}, headers=headers
    )
    assert r.status_code == 202, r.get_data(as_text=True)
    assert client.post(f"/api/jobs/{running_id}/cancel", headers=headers).status_code == 202


def job_count(svc: Services) -> int:
    with Session(svc.engine) as s:
        return int(s.scalar(select(func.count()).select_from(Job)) or 0)
