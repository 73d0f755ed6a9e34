"""Recorded steps in SQL: load a job's, record one, wait on one, resolve a wait.

Every write is idempotent by (job, step index): a run that recorded a step
and was then killed before it went on finds the record when it runs again.
Resolving a wait is the one gate to resuming: it flips the step from
`waiting` in a single UPDATE and, in the same transaction, moves the job to
its next run number, so of two answers (or an answer and a timeout) exactly
one resumes the run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, exists, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from workers.durable.replay import RecordedStep, StepKind, StepStatus
from workers.models import Job, RunStep


def _to_record(row: RunStep) -> RecordedStep:
    return RecordedStep(
        idx=row.idx,
        name=row.name,
        kind=StepKind(row.kind),
        status=StepStatus(row.status),
        result=row.result,
        error=row.error,
        detail=row.detail,
        wake_at=row.wake_at,
    )


@dataclass(frozen=True)
class JobRow:
    """What a run needs of its job's row."""

    run_no: int
    owner_id: str | None
    root_id: str | None
    queue: str | None


def load(sessions: sessionmaker, job_id: str) -> tuple[JobRow | None, list[RecordedStep]]:
    """(the job's row, None if it has none; its recorded steps in order)."""
    with sessions() as s:
        found = s.execute(
            select(Job.run_no, Job.owner_id, Job.root_id, Job.queue).where(Job.id == job_id)
        ).first()
        rows = s.scalars(select(RunStep).where(RunStep.job_id == job_id).order_by(RunStep.idx))
        row = JobRow(found[0] or 0, found[1], found[2], found[3]) if found else None
        return row, [_to_record(r) for r in rows]


def _insert_ignoring_existing(s: Session, values: dict[str, Any]) -> None:
    dialect = s.get_bind().dialect.name
    stmt: Any
    if dialect == "postgresql":
        stmt = postgresql.insert(RunStep).on_conflict_do_nothing(index_elements=["job_id", "idx"])
    elif dialect == "sqlite":
        stmt = sqlite.insert(RunStep).on_conflict_do_nothing(index_elements=["job_id", "idx"])
    else:  # pragma: no cover - other databases: a plain insert
        stmt = insert(RunStep)
    s.execute(stmt, [values])


def record(
    sessions: sessionmaker, job_id: str, step: RecordedStep, started_at: float
) -> RecordedStep:
    """Store a step; if this (job, index) is stored already, that record wins."""
    now = time.time()
    values = {
        "job_id": job_id,
        "idx": step.idx,
        "name": step.name,
        "kind": step.kind.value,
        "status": step.status.value,
        "result": step.result,
        "error": step.error,
        "detail": step.detail,
        "wake_at": step.wake_at,
        "started_at": started_at,
        "finished_at": None if step.status is StepStatus.WAITING else now,
    }
    with sessions.begin() as s:
        _insert_ignoring_existing(s, values)
        row = s.get(RunStep, (job_id, step.idx))
        assert row is not None
        return _to_record(row)


def resolve(
    sessions: sessionmaker,
    job_id: str,
    idx: int,
    status: StepStatus,
    result: Any = None,
    error: str | None = None,
) -> int | None:
    """End a wait: the job's new run number if this call ended it, None if it was not
    waiting (already answered, timed out, cancelled, or never suspended)."""
    with sessions.begin() as s:
        changed = s.execute(
            update(RunStep)
            .where(
                RunStep.job_id == job_id,
                RunStep.idx == idx,
                RunStep.status == StepStatus.WAITING.value,
            )
            .values(status=status.value, result=result, error=error, finished_at=time.time())
        )
        if changed.rowcount != 1:  # type: ignore[attr-defined]
            return None
        s.execute(update(Job).where(Job.id == job_id).values(run_no=Job.run_no + 1))
        return s.scalar(select(Job.run_no).where(Job.id == job_id))


def unresolve(sessions: sessionmaker, job_id: str, idx: int) -> None:
    """Undo `resolve` when the next run could not be sent: the wait goes on."""
    with sessions.begin() as s:
        s.execute(
            update(RunStep)
            .where(RunStep.job_id == job_id, RunStep.idx == idx)
            .values(status=StepStatus.WAITING.value, result=None, error=None, finished_at=None)
        )
        s.execute(update(Job).where(Job.id == job_id).values(run_no=Job.run_no - 1))


def not_suspended() -> ColumnElement[bool]:
    """A condition on `Job`: the job is not suspended (no step of it is waiting). A
    suspended job is WAITING with no task anywhere: not stuck, not on any worker."""
    waiting = select(RunStep.job_id).where(
        RunStep.job_id == Job.id, RunStep.status == StepStatus.WAITING.value
    )
    return ~exists(waiting)


def waiting_step(sessions: sessionmaker, job_id: str) -> RecordedStep | None:
    with sessions() as s:
        row = s.scalar(
            select(RunStep).where(
                RunStep.job_id == job_id, RunStep.status == StepStatus.WAITING.value
            )
        )
        return _to_record(row) if row is not None else None


def due(sessions: sessionmaker, now: float, limit: int = 200) -> list[tuple[str, RecordedStep]]:
    """Waits whose time has come: sleeps to wake, questions past their timeout."""
    with sessions() as s:
        rows = s.scalars(
            select(RunStep)
            .where(
                RunStep.status == StepStatus.WAITING.value,
                RunStep.kind.in_([StepKind.SLEEP.value, StepKind.ASK.value]),
                RunStep.wake_at <= now,
            )
            .order_by(RunStep.wake_at)
            .limit(limit)
        )
        return [(r.job_id, _to_record(r)) for r in rows]


def waiting_for_children(
    sessions: sessionmaker, after: str = "", limit: int = 200
) -> list[tuple[str, RecordedStep]]:
    """Runs waiting for their children, by job id after `after` (pages, so that many
    waiting parents cannot starve the ones whose children have ended)."""
    with sessions() as s:
        rows = s.scalars(
            select(RunStep)
            .where(
                RunStep.status == StepStatus.WAITING.value,
                RunStep.kind == StepKind.WAIT.value,
                RunStep.job_id > after,
            )
            .order_by(RunStep.job_id)
            .limit(limit)
        )
        return [(r.job_id, _to_record(r)) for r in rows]


def copy_until_failure(sessions: sessionmaker, from_job: str, to_job: str) -> int:
    """Give a new job the steps its failed run completed, up to the first that did not
    (for a retry from the failed step); how many were copied."""
    _, steps = load(sessions, from_job)
    kept: list[RecordedStep] = []
    for step in steps:
        if step.status is not StepStatus.DONE or step.idx != len(kept):
            break
        kept.append(step)
    now = time.time()
    for step in kept:
        record(sessions, to_job, step, now)
    return len(kept)


def steps_of(sessions: sessionmaker, job_id: str) -> list[dict[str, Any]]:
    """A job's recorded steps as the API shows them."""
    with sessions() as s:
        rows = s.scalars(select(RunStep).where(RunStep.job_id == job_id).order_by(RunStep.idx))
        return [
            {
                "idx": r.idx,
                "name": r.name,
                "kind": r.kind,
                "status": r.status,
                "result": r.result,
                "error": r.error,
                "detail": r.detail,
                "wake_at": r.wake_at,
                "started_at": r.started_at,
                "finished_at": r.finished_at,
            }
            for r in rows
        ]
