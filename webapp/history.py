"""How events update a job's SQL row, and the idempotent insert of events."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from workers.envelope import Event
from workers.events import EventType
from workers.models import EventRow, Job


def insert_events_ignoring_duplicates(session: Session, events: list[Event]) -> None:
    """Insert events; a `(job, seq)` already stored is left as it is."""
    if not events:
        return
    rows: list[dict[str, Any]] = [
        {
            "job_id": e.job,
            "seq": e.seq,
            "type": e.type,
            "ts": e.ts,
            "state": e.state,
            "data": e.data,
        }
        for e in events
    ]
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        stmt: Any = postgresql.insert(EventRow).on_conflict_do_nothing(
            index_elements=["job_id", "seq"]
        )
    elif dialect == "sqlite":
        stmt = sqlite.insert(EventRow).on_conflict_do_nothing(index_elements=["job_id", "seq"])
    else:  # pragma: no cover - other databases: plain insert
        stmt = insert(EventRow)
    session.execute(stmt, rows)


def new_job_row(event: Event) -> Job:
    return Job(id=event.job, name="", state=event.state, created_at=event.ts, retries=0, last_seq=0)


def apply_event(job: Job, event: Event) -> None:
    """Fold one event into the job's row (events arrive in seq order).

    The pages fold events with the same rules in `webapp/static/js/fold.js`; both are
    held to tests/fixtures/event_folds.json (docs/api.md, "How an event changes the
    job"). Change a rule in both, with a case.
    """
    d = event.data
    t = event.type
    if t == EventType.JOB_QUEUED:
        job.name = d.get("name") or job.name
        if d.get("agent"):
            job.agent = d["agent"]
            job.input = d.get("input", job.input)
        job.args = d.get("args", job.args)
        job.kwargs = d.get("kwargs", job.kwargs)
        job.queue = d.get("queue") or job.queue
        # A run sent by the web (a resumed durable run) names no parent and itself as its
        # root, and a retry sent from inside the task names itself its parent: the job
        # keeps the parent and root it has.
        if d.get("parent_id") and d["parent_id"] != job.id:
            job.parent_id = d["parent_id"]
        job.root_id = job.root_id or d.get("root_id")
        job.created_at = job.created_at or event.ts
    elif t == EventType.JOB_RECEIVED:
        job.received_at = event.ts
        job.worker = d.get("worker") or job.worker
        job.name = job.name or d.get("name") or ""
    elif t == EventType.JOB_STARTED:
        job.started_at = event.ts
        job.received_at = job.received_at or d.get("received_at")
        job.worker = d.get("worker") or job.worker
        job.retries = max(job.retries or 0, int(d.get("retries") or 0))
    elif t == EventType.JOB_RETRYING:
        job.retries = max(job.retries or 0, int(d.get("retries") or (job.retries or 0) + 1))
        job.error = d.get("reason")
    elif t == EventType.JOB_SUCCEEDED:
        job.result = d.get("result")
        job.finished_at = event.ts
    elif t == EventType.JOB_FAILED:
        job.error = d.get("error")
        job.traceback = d.get("traceback")
        job.finished_at = event.ts
    elif t == EventType.JOB_CANCELLED:
        job.error = job.error or f"cancelled ({d.get('reason', 'revoked')})"
        job.finished_at = job.finished_at or event.ts
        job.worker = job.worker or d.get("worker")  # revoked before any worker received it
    elif t == EventType.JOB_LOST:
        job.error = d.get("error") or "worker lost"
    job.state = event.state
    job.last_seq = max(job.last_seq or 0, event.seq)
    job.updated_at = event.ts
