"""The state rules (docs/api.md, "The event envelope") and the Redis scripts that
apply them: the rules in `workers.events`, the scripts' constants from there and
from `workers.envelope`, never spelled in a `.lua` file. No services."""

from __future__ import annotations

import re
from importlib.resources import files
from importlib.resources.abc import Traversable

import pytest

from workers import envelope, lua
from workers.events import (
    FINAL_EVENT,
    FINAL_STATES,
    INITIAL_STATE,
    RETRYABLE_STATES,
    STATE_AFTER,
    EventType,
    JobState,
    next_state,
)

S = JobState


def test_the_final_states_are_success_failure_and_revoked() -> None:
    assert {"SUCCESS", "FAILURE", "REVOKED"} == FINAL_STATES
    assert [s for s in JobState if s.is_final] == [S.SUCCESS, S.FAILURE, S.REVOKED]


def test_each_lifecycle_event_moves_its_job_to_the_documented_state() -> None:
    assert {str(t): str(s) for t, s in STATE_AFTER.items()} == {
        "job.queued": "PENDING",
        "job.received": "RECEIVED",
        "job.started": "STARTED",
        "job.retrying": "RETRY",
        "job.waiting": "WAITING",
        "input.requested": "WAITING",
        "job.suspended": "WAITING",  # a durable run's wait: no worker holds it
        "job.resumed": "PENDING",  # the wait is over: queued to run on
        "job.succeeded": "SUCCESS",
        "job.failed": "FAILURE",
        "job.cancelled": "REVOKED",
    }
    # job.lost, the answer itself and the chatter keep the state
    assert EventType.JOB_LOST not in STATE_AFTER
    assert EventType.INPUT_RECEIVED not in STATE_AFTER
    assert EventType.OUTPUT not in STATE_AFTER


def test_each_final_state_has_the_one_event_that_ends_a_job_in_it() -> None:
    assert FINAL_EVENT == {
        S.SUCCESS: EventType.JOB_SUCCEEDED,
        S.FAILURE: EventType.JOB_FAILED,
        S.REVOKED: EventType.JOB_CANCELLED,
    }
    assert FINAL_EVENT.get("SUCCESS") == EventType.JOB_SUCCEEDED  # Celery's state names


def test_a_failed_or_revoked_job_may_be_retried_a_succeeded_or_unfinished_one_not() -> None:
    assert {S.FAILURE, S.REVOKED} == RETRYABLE_STATES
    assert "FAILURE" in RETRYABLE_STATES
    assert "SUCCESS" not in RETRYABLE_STATES and "STARTED" not in RETRYABLE_STATES


@pytest.mark.parametrize("final", sorted(FINAL_STATES))
def test_a_final_state_never_changes(final: JobState) -> None:
    for proposed in [*JobState, ""]:
        assert next_state(final, proposed) == final


def test_an_event_with_no_state_keeps_the_jobs_or_starts_it_pending() -> None:
    assert next_state(S.STARTED, "") == S.STARTED
    assert next_state(None, "") == INITIAL_STATE == S.PENDING


def test_a_late_received_does_not_undo_started_but_moves_every_other_open_state() -> None:
    assert next_state(S.STARTED, S.RECEIVED) == S.STARTED
    for current in [S.PENDING, S.RETRY, S.WAITING, None]:
        assert next_state(current, S.RECEIVED) == S.RECEIVED


def test_an_open_state_moves_to_whatever_the_event_says() -> None:
    assert next_state(S.RECEIVED, S.STARTED) == S.STARTED
    assert next_state(S.STARTED, S.WAITING) == S.WAITING
    assert next_state(S.WAITING, S.STARTED) == S.STARTED
    assert next_state(S.STARTED, S.FAILURE) == S.FAILURE
    assert next_state(S.RETRY, S.PENDING) == S.PENDING  # a lost job requeued


# -- the scripts ----------------------------------------------------------------
LUA_FILES = sorted(
    (p for p in files(lua.__name__).iterdir() if p.name.endswith(".lua")), key=lambda p: p.name
)


def _code(source: str) -> str:
    return "\n".join(line.split("--", 1)[0] for line in source.splitlines())


@pytest.mark.parametrize("path", LUA_FILES, ids=lambda p: p.name)
def test_a_script_states_its_contract_and_spells_no_state_or_layout(path: Traversable) -> None:
    source = path.read_text(encoding="utf-8")
    assert re.search(r"^-- KEYS: ", source, re.MULTILINE), "its header states its KEYS"
    assert re.search(r"^-- ARGV: ", source, re.MULTILINE), "and its ARGV"
    code = _code(source)
    for state in JobState:
        assert state.value not in code
    for marker in ["job", "seq", "type", "ts", "state", "data"]:
        assert f'"{marker}"' not in code


@pytest.mark.parametrize("name", ["PUBLISH", "READ_LOG"])
def test_the_scripts_get_the_layout_and_the_rules_on_their_first_line(name: str) -> None:
    first = getattr(lua, name).splitlines()[0]
    assert f"local SEQ_PATTERN = '{lua.lua_pattern(envelope.SEQ_AT)}(%d+)'" in first
    if name == "PUBLISH":
        assert "local FINAL = {['FAILURE'] = true, ['REVOKED'] = true, ['SUCCESS'] = true}" in first
        assert "local INITIAL = 'PENDING'" in first
        assert "local SUPERSEDED_BY = {['RECEIVED'] = {['STARTED'] = true}}" in first
        assert "local SEP = '\\031' local RS = '\\030'" in first


def test_lua_literals_escape_what_lua_would_read_otherwise() -> None:
    assert lua.lua_string("it's a \\ é\n") == "'it\\039s a \\092 \\195\\169\\010'"
    assert lua.lua_pattern(',"a.b"%(x)') == ',"a%.b"%%%(x%)'
