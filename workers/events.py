"""Job states, event types, and the rules that tie them together.

The envelope itself (its dataclass, layout, readers, decode) is in
`workers.envelope`. The publish script applies these rules in Redis: it gets
them from here through `workers.lua`, and `next_state` is the same rule in
Python. This module imports nothing else from the project.
"""

from __future__ import annotations

import time
from enum import StrEnum


class JobState(StrEnum):
    PENDING = "PENDING"
    RECEIVED = "RECEIVED"
    STARTED = "STARTED"
    RETRY = "RETRY"
    WAITING = "WAITING"
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    REVOKED = "REVOKED"

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATES


# Once a job is in one of these, no event changes its state.
FINAL_STATES = frozenset({JobState.SUCCESS, JobState.FAILURE, JobState.REVOKED})
# A job's state before any event said one.
INITIAL_STATE = JobState.PENDING
# A job that ended without success may be run again.
RETRYABLE_STATES = frozenset({JobState.FAILURE, JobState.REVOKED})
# A state that arrives while the job is in one of these does not move it back: the
# heartbeat's job.received for a task that started meanwhile can land after job.started.
SUPERSEDED_BY: dict[str, frozenset[str]] = {
    JobState.RECEIVED: frozenset({JobState.STARTED}),
}


class EventType(StrEnum):
    JOB_QUEUED = "job.queued"
    JOB_RECEIVED = "job.received"
    JOB_STARTED = "job.started"
    JOB_RETRYING = "job.retrying"
    JOB_WAITING = "job.waiting"
    JOB_SUCCEEDED = "job.succeeded"
    JOB_FAILED = "job.failed"
    JOB_CANCELLED = "job.cancelled"
    JOB_LOST = "job.lost"
    STEP_STARTED = "step.started"
    STEP_FINISHED = "step.finished"
    LOG = "log"
    OUTPUT = "output"
    PROGRESS = "progress"
    TOOL_CALLED = "tool.called"
    TOOL_RETURNED = "tool.returned"
    INPUT_REQUESTED = "input.requested"
    INPUT_RECEIVED = "input.received"
    JOB_SUSPENDED = "job.suspended"  # the run ended while it waits; no worker holds it
    JOB_RESUMED = "job.resumed"  # the wait is over: the run is queued again
    CHILD_SPAWNED = "child.spawned"


# Events of these types are the `jobs` topic's (lifecycle events).
LIFECYCLE_PREFIX = "job."

# The state a lifecycle event moves its job to; other events keep the state.
STATE_AFTER: dict[EventType, JobState] = {
    EventType.JOB_QUEUED: JobState.PENDING,
    EventType.JOB_RECEIVED: JobState.RECEIVED,
    EventType.JOB_STARTED: JobState.STARTED,
    EventType.JOB_RETRYING: JobState.RETRY,
    EventType.JOB_WAITING: JobState.WAITING,
    EventType.INPUT_REQUESTED: JobState.WAITING,
    EventType.JOB_SUSPENDED: JobState.WAITING,
    EventType.JOB_RESUMED: JobState.PENDING,
    EventType.JOB_SUCCEEDED: JobState.SUCCESS,
    EventType.JOB_FAILED: JobState.FAILURE,
    EventType.JOB_CANCELLED: JobState.REVOKED,
}
# The event that ends a job in each final state (the janitor says it for a lost one).
FINAL_EVENT: dict[str, EventType] = {
    state: type_ for type_, state in STATE_AFTER.items() if state in FINAL_STATES
}


def next_state(current: str | None, proposed: str) -> str:
    """The job's state after an event proposing `proposed` ("": keep the state) when
    it is in `current` (None: no event yet). The publish script's rule."""
    if not proposed:
        return current or INITIAL_STATE
    if current is not None and (
        current in FINAL_STATES or current in SUPERSEDED_BY.get(proposed, ())
    ):
        return current
    return proposed


def now() -> float:
    return time.time()
