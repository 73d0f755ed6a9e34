"""The event envelope: states, event types, encode/decode.

Every event, wherever it travels (pub/sub, replay log, REST, WebSocket), is
one JSON object with the fields of `Event`. This module imports nothing else
from the project so both the web app and the workers can use it.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


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


FINAL_STATES = frozenset({JobState.SUCCESS, JobState.FAILURE, JobState.REVOKED})


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


# The state a lifecycle event moves its job to; other events keep the state.
STATE_AFTER: dict[EventType, JobState] = {
    EventType.JOB_QUEUED: JobState.PENDING,
    EventType.JOB_RECEIVED: JobState.RECEIVED,
    EventType.JOB_STARTED: JobState.STARTED,
    EventType.JOB_RETRYING: JobState.RETRY,
    EventType.JOB_WAITING: JobState.WAITING,
    EventType.INPUT_REQUESTED: JobState.WAITING,
    EventType.INPUT_RECEIVED: JobState.STARTED,
    EventType.JOB_SUCCEEDED: JobState.SUCCESS,
    EventType.JOB_FAILED: JobState.FAILURE,
    EventType.JOB_CANCELLED: JobState.REVOKED,
}


class EnvelopeError(ValueError):
    """A message that is not a valid event envelope."""


@dataclass(frozen=True, slots=True)
class Event:
    job: str
    seq: int
    type: str
    ts: float
    state: str
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def encode(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"), default=str)


def now() -> float:
    return time.time()


def decode(raw: str | bytes) -> Event:
    """Parse one envelope, raising `EnvelopeError` on anything malformed."""
    try:
        obj = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise EnvelopeError(f"not JSON: {exc}") from exc
    return from_dict(obj)


def from_dict(obj: Any) -> Event:
    if not isinstance(obj, dict):
        raise EnvelopeError("envelope must be a JSON object")
    try:
        event = Event(
            job=str(obj["job"]),
            seq=int(obj["seq"]),
            type=str(obj["type"]),
            ts=float(obj["ts"]),
            state=str(obj["state"]),
            data=dict(obj.get("data") or {}),
        )
    except (KeyError, TypeError, ValueError, OverflowError) as exc:  # a 1e999 seq
        raise EnvelopeError(f"bad envelope: {exc!r}") from exc
    if event.seq < 1:
        raise EnvelopeError("seq must be >= 1")
    return event
