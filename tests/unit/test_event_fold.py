"""The Python fold (`webapp.history.apply_event`) against the shared event-fold cases.

tests/fixtures/event_folds.json holds the cases; tests/browser/test_event_fold.py
runs the same ones through the pages' fold (webapp/static/js/fold.js). No
services: rows are folded in memory and read back as the REST API shows them.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support import event_folds
from webapp.history import FIELD_TYPES, apply_event, folds_only_head, new_job_row
from webapp.jobs import job_to_dict
from workers.envelope import Event, from_dict
from workers.events import FINAL_STATES, EventType
from workers.models import Job

COLUMNS = [c.key for c in Job.__table__.columns]


def fold_in_python(case: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the REST job after the case's events, and after folding them a second time)."""
    events = [from_dict(e) for e in case["events"]]
    job = Job(**case["start"]) if case["start"] is not None else new_job_row(events[0])
    for event in events:
        apply_event(job, event)
    once = job_to_dict(job)
    for event in events:
        apply_event(job, event)
    return once, job_to_dict(job)


@pytest.mark.parametrize("name", event_folds.case_names())
def test_apply_event_folds_each_case_into_the_expected_job(name: str) -> None:
    # Given a case: a stored row (or none) and the envelopes the publisher gave its job
    case = event_folds.case(name)

    # When the recorder's fold applies them, and applies them again over the result
    once, twice = fold_in_python(case)

    # Then the job as the REST API shows it has every expected field,
    # and folding events the job already holds changes nothing
    assert event_folds.differences(case["expect"], once) == []
    if case.get("idempotent", True):
        assert event_folds.differences(case["expect"], twice) == []


def test_the_cases_are_envelopes_the_platform_can_produce() -> None:
    # Given the shared cases
    cases = event_folds.cases()
    known_types = {t.value for t in EventType}
    shared = event_folds.fields()

    # When each case is read as the recorder reads the replay log
    # Then the envelopes are valid, of known types, numbered on from the start row,
    # one job per case, with final states that stay final; and each case states
    # every shared field, none of them set at submit only
    assert len(set(event_folds.case_names())) == len(cases)
    assert not set(shared) & set(event_folds.not_folded())
    for case in cases:
        name = case["name"]
        start = case["start"]
        events = [from_dict(e) for e in case["events"]]
        assert events, name
        assert list(case["expect"]) == shared, name
        assert case["expect"]["id"] == events[0].job, name
        assert {e.job for e in events} == {events[0].job}, name
        assert start is None or start["id"] == events[0].job, name
        assert start is None or "runtime" not in start, f"{name}: runtime is derived"
        first = (start["last_seq"] if start else 0) + 1
        assert [e.seq for e in events] == list(range(first, first + len(events))), name
        assert {e.type for e in events} <= known_types, name
        ended = [i for i, e in enumerate(events) if e.state in FINAL_STATES]
        if ended:
            after = {e.state for e in events[ended[0] :]}
            assert after == {events[ended[0]].state}, f"{name}: a final state changed"


HEAD_FIELDS = {"state", "last_seq", "updated_at"}


@pytest.mark.parametrize("type_", sorted(set(EventType) - FIELD_TYPES))
def test_an_event_outside_field_types_moves_only_the_jobs_head(type_: EventType) -> None:
    # given a job with every field set, and an event of a type the recorder folds in
    # one UPDATE of the state, the seq and the time (webapp.history.set_heads)
    start = Job(
        id="j", name="n", agent="a", state="STARTED", created_at=1.0, received_at=2.0,
        started_at=3.0, finished_at=None, worker="w", retries=1, last_seq=7, updated_at=3.0,
        error=None, result=None, queue="q",
    )  # fmt: skip
    job = Job(**{c: getattr(start, c) for c in COLUMNS})
    data = {"name": "x", "worker": "y", "error": "e", "result": 1, "retries": 9, "reason": "r"}
    event = Event(job="j", seq=8, type=type_, ts=9.0, state="WAITING", data=data)
    # when apply_event folds it
    apply_event(job, event)
    # then only those three fields moved, as set_heads would move them
    changed = {c for c in COLUMNS if getattr(job, c) != getattr(start, c)}
    assert changed <= HEAD_FIELDS
    assert (job.state, job.last_seq, job.updated_at) == ("WAITING", 8, 9.0)
    assert folds_only_head([event])
