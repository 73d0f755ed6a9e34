"""The jobs list, in-process against the session's real Redis and SQL, recorder off."""

from __future__ import annotations

import time
import uuid

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from tests.support.http import auth_headers
from webapp import create_app
from webapp.services import Services
from workers.events import EventType
from workers.models import Job
from workers.publisher import get_publisher


@pytest.fixture(scope="module")
def app() -> Flask:
    return create_app(background=False)


def test_the_list_shows_events_the_recorder_has_not_stored_yet(app: Flask) -> None:
    # Given a job whose SQL row says STARTED (recorded up to seq 2), while its
    # job.failed is already in Redis and no recorder has run since
    svc: Services = app.extensions["agentdeck"]
    job_id = f"list-{uuid.uuid4()}"
    publisher = get_publisher()
    for type_ in (EventType.JOB_QUEUED, EventType.JOB_STARTED, EventType.JOB_FAILED):
        publisher.emit(job_id, type_, {"error": "boom"} if type_ is EventType.JOB_FAILED else {})
    assert publisher.flush(timeout=5)
    now = time.time()
    with Session(svc.engine) as s, s.begin():
        s.add(Job(id=job_id, name="agentdeck.run_agent", agent="fail", state="STARTED",
                  input={}, retries=0, last_seq=2, created_at=now, updated_at=now))  # fmt: skip
    # When the list is read (as the jobs page does right after subscribing)
    body = app.test_client().get(f"/api/jobs?q={job_id}", headers=auth_headers()).get_json()
    # Then the row already has the state the job is in
    (row,) = body["jobs"]
    assert (row["id"], row["state"]) == (job_id, "FAILURE")


def test_the_parent_filter_lists_a_jobs_children_and_no_other_job(app: Flask) -> None:
    # Given a parent with two child rows, and another job with a child of its own
    svc: Services = app.extensions["agentdeck"]
    parent, other = f"parent-{uuid.uuid4()}", f"other-{uuid.uuid4()}"
    kids = [f"kid-{uuid.uuid4()}" for _ in range(2)]
    now = time.time()
    with Session(svc.engine) as s, s.begin():
        for job_id, of in [(parent, None), (other, None), *((k, parent) for k in kids),
                           (f"kid-{uuid.uuid4()}", other)]:  # fmt: skip
            s.add(Job(id=job_id, name="agentdeck.run_agent", agent="echo", state="SUCCESS",
                      input={}, retries=0, last_seq=0, created_at=now, parent_id=of))  # fmt: skip
    # When the list is filtered by the parent
    body = app.test_client().get(f"/api/jobs?parent={parent}", headers=auth_headers()).get_json()
    # Then it holds the parent's children only, and counts them
    assert sorted(j["id"] for j in body["jobs"]) == sorted(kids)
    assert {j["parent_id"] for j in body["jobs"]} == {parent}
    assert body["counts"]["SUCCESS"] == 2
