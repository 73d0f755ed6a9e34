"""The janitor, run in-process against the session's real Redis, SQL and result backend."""

from __future__ import annotations

import time
import uuid

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from webapp import create_app
from webapp.lost_workers import check_vanished_workers
from webapp.services import Services, text
from workers.models import Job
from workers.publisher import get_publisher
from workers.replay_log import head_of


@pytest.fixture(scope="module")
def app() -> Flask:
    return create_app(background=False)


@pytest.fixture
def svc(app: Flask) -> Services:
    services: Services = app.extensions["agentdeck"]
    return services


def open_job(svc: Services, *, worker: str, state: str = "STARTED") -> str:
    job_id = f"janitor-{uuid.uuid4()}"
    with Session(svc.engine) as s, s.begin():
        s.add(
            Job(
                id=job_id,
                name="agentdeck.run_agent",
                agent="sleep",
                state=state,
                input={"seconds": 1},
                worker=worker,
                retries=0,
                last_seq=3,
                created_at=time.time() - 120,
                updated_at=time.time() - 120,
            )
        )
    return job_id


def log_of(svc: Services, job_id: str) -> list[str]:
    return [text(raw) for raw in svc.redis.lrange(svc.settings.keys.log(job_id), 0, -1)]


def test_a_job_the_result_backend_says_ended_is_reconciled(svc: Services) -> None:
    # given a job stuck STARTED in SQL whose final event was lost, but which Celery's
    # result backend knows ended
    job_id = open_job(svc, worker="somewhere@host")
    svc.celery.backend.store_result(job_id, "the answer", "SUCCESS")
    # when the janitor scans
    assert svc.janitor is not None
    fixed = svc.janitor.reconcile_stuck(older_than=60)
    get_publisher().flush()
    # then the job gets its final event, marked reconciled, continuing SQL's seq
    assert fixed >= 1
    assert head_of(svc.redis, svc.settings.keys, job_id)[1] == "SUCCESS"
    (event,) = log_of(svc, job_id)
    assert '"seq":4,"type":"job.succeeded"' in event and '"reconciled":true' in event


def test_a_job_on_a_worker_redis_has_no_heartbeat_of_is_lost(svc: Services) -> None:
    # given a job open on a worker that left no heartbeat record (Redis lost its data
    # and the worker died with it)
    job_id = open_job(svc, worker=f"ghost-{uuid.uuid4().hex[:6]}@nowhere")
    # when the janitor looks for vanished workers
    lost = check_vanished_workers(svc, quiet_for=60)
    # then the job is said lost and, its message being gone, failed
    assert lost >= 1
    assert head_of(svc.redis, svc.settings.keys, job_id)[1] == "FAILURE"
    events = log_of(svc, job_id)
    assert '"type":"job.lost"' in events[0] and '"seq":4' in events[0]
    assert '"type":"job.failed"' in events[1] and "the message was gone" in events[1]
