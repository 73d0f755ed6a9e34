"""The recorder's fold in SQL (`webapp.history.fold_events`) against the shared
event-fold cases (tests/fixtures/event_folds.json), on the session's real database
(a SQLite file, or PostgreSQL from DATABASE_URL).

A stored job's events are folded into its row read as plain values and written back
by UPDATE statements, not through the ORM: what comes back from the database must be
what `apply_event` gives in memory, column by column, for every case.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from tests.support import event_folds
from webapp.history import apply_event, fold_events, job_heads, new_job_row
from webapp.jobs import job_to_dict
from workers.envelope import Event, from_dict
from workers.models import Job

# What the fold sets (run_no is the database's default on a row made in memory).
COLUMNS = [c.key for c in Job.__table__.columns if c.key != "run_no"]


def _case_for_new_job(name: str) -> dict[str, Any]:
    """The case, its job id replaced by a new one (the session's database is shared)."""
    case = event_folds.case(name)
    old_id = case["events"][0]["job"]
    copied: dict[str, Any] = json.loads(json.dumps(case).replace(old_id, uuid.uuid4().hex))
    return copied


def _stored_row(case: dict[str, Any], events: list[Event]) -> Job:
    """The row before the events: the case's, or the one the recorder makes from the first."""
    return Job(**case["start"]) if case["start"] is not None else new_job_row(events[0])


@pytest.mark.parametrize("name", event_folds.case_names())
def test_a_stored_jobs_events_fold_in_sql_as_in_memory(sql_engine: Engine, name: str) -> None:
    # Given a case's job stored in SQL, before its events
    case = _case_for_new_job(name)
    events = [from_dict(e) for e in case["events"]]
    job_id = events[0].job
    with Session(sql_engine) as s, s.begin():
        s.add(_stored_row(case, events))
    in_memory = _stored_row(case, events)
    for event in events:
        apply_event(in_memory, event)

    # When the recorder folds them into the stored row
    with Session(sql_engine) as s, s.begin():
        fold_events(s, job_heads(s, [job_id]), {job_id: events})

    # Then the row read back is the in-memory fold, column by column,
    # and the job the REST API shows has every field the case expects
    with Session(sql_engine) as s:
        row = s.get(Job, job_id)
        assert row is not None
        assert {c: getattr(row, c) for c in COLUMNS} == {c: getattr(in_memory, c) for c in COLUMNS}
        assert event_folds.differences(case["expect"], job_to_dict(row)) == []
