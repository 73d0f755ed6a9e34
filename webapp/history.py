"""How events update a job's SQL row, and the idempotent insert of events."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from types import SimpleNamespace
from typing import Any, cast

from sqlalchemy import JSON, Float, Integer, Table, bindparam, insert, select, update
from sqlalchemy.orm import Session

from workers.envelope import Event, encode_data
from workers.events import EventType
from workers.models import EventRow, Job

# An events row: job, seq, type, ts, state, and the data as its JSON text.
EventValues = tuple[str, int, str, float, str, str]

# The types `apply_event` folds into more of the row than the state, the seq and the
# time (`folds_only_head`); a job's other events are folded in one UPDATE of those.
FIELD_TYPES = frozenset(
    {
        EventType.JOB_QUEUED,
        EventType.JOB_RECEIVED,
        EventType.JOB_STARTED,
        EventType.JOB_RETRYING,
        EventType.JOB_SUCCEEDED,
        EventType.JOB_FAILED,
        EventType.JOB_CANCELLED,
        EventType.JOB_LOST,
    }
)

_INSERT_EVENTS = {
    "sqlite": "INSERT INTO events (job_id, seq, type, ts, state, data) VALUES (?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (job_id, seq) DO NOTHING",
    "postgresql": "INSERT INTO events (job_id, seq, type, ts, state, data)"
    " SELECT j, s, t, ts, st, d::json FROM unnest("
    "%s::text[], %s::int[], %s::text[], %s::float8[], %s::text[], %s::text[]"
    ") AS u(j, s, t, ts, st, d) ON CONFLICT (job_id, seq) DO NOTHING",
}
_SET_HEADS = {
    "sqlite": "UPDATE jobs SET last_seq = ?2, updated_at = ?3, state = ?4"
    " WHERE id = ?1 AND last_seq < ?2",
    "postgresql": "UPDATE jobs SET last_seq = u.s, updated_at = u.ts, state = u.st FROM unnest("
    "%s::text[], %s::int[], %s::float8[], %s::text[]) AS u(id, s, ts, st)"
    " WHERE jobs.id = u.id AND jobs.last_seq < u.s",
}


def event_values(event: Event, data_text: str | None = None) -> EventValues:
    """`event` as an events row (`data_text`: its data's JSON text, when at hand)."""
    data = encode_data(event.data) if data_text is None else data_text
    return (event.job, event.seq, event.type, event.ts, event.state, data)


def insert_event_rows(session: Session, rows: list[EventValues]) -> None:
    """Insert events; a `(job, seq)` already stored is left as it is."""
    if rows and not _run_many(session, _INSERT_EVENTS, rows):  # pragma: no cover
        keys = ("job_id", "seq", "type", "ts", "state", "data")
        values = [dict(zip(keys, (*r[:5], json.loads(r[5])), strict=True)) for r in rows]
        session.execute(insert(EventRow), values)  # another database: a plain insert


def _run_many(session: Session, statements: Mapping[str, str], rows: list[Any]) -> bool:
    """The dialect's statement for every row: on PostgreSQL one statement over the rows'
    columns as arrays (psycopg sends an executemany as one statement a row), on SQLite
    an executemany. False on another database."""
    conn = session.connection()
    dialect = conn.dialect.name
    if dialect == "postgresql":
        columns = tuple(list(column) for column in zip(*rows, strict=True))
        conn.exec_driver_sql(statements[dialect], columns)
    elif dialect == "sqlite":
        conn.exec_driver_sql(statements[dialect], rows)
    else:  # pragma: no cover
        return False
    return True


def insert_events_ignoring_duplicates(session: Session, events: list[Event]) -> None:
    """Insert events; a `(job, seq)` already stored is left as it is."""
    insert_event_rows(session, [event_values(e) for e in events])


def job_heads(session: Session, ids: list[str]) -> dict[str, int]:
    """{job id: last seq stored} of those of `ids` that have a row (locked until the
    transaction ends, on PostgreSQL: another recorder waits)."""
    query = select(Job.id, Job.last_seq).where(Job.id.in_(ids))
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    return {job_id: last_seq or 0 for job_id, last_seq in session.execute(query)}


def folds_only_head(events: Iterable[Event]) -> bool:
    """Whether `apply_event` would set only the state, last seq and time of these."""
    return not any(e.type in FIELD_TYPES for e in events)


def set_heads(session: Session, heads: list[tuple[str, int, float, str]]) -> None:
    """Fold jobs' events of `folds_only_head` types: for each (job id, last seq, its ts,
    its state), what `apply_event` sets, on a row that holds an older seq."""
    if heads and not _run_many(session, _SET_HEADS, heads):  # pragma: no cover
        for job_id, seq, ts, state in heads:  # another database: through the ORM
            row = session.get(Job, job_id)
            if row is not None and (row.last_seq or 0) < seq:
                row.last_seq, row.updated_at, row.state = seq, ts, state


# The columns `apply_event` sets: what a fold may change.
FOLDED = (
    "name", "agent", "state", "input", "args", "kwargs", "result", "error", "traceback",
    "queue", "parent_id", "root_id", "worker", "retries",
    "created_at", "received_at", "started_at", "finished_at", "updated_at", "last_seq",
)  # fmt: skip
_JSON_FOLDED = frozenset(c for c in FOLDED if isinstance(Job.__table__.c[c].type, JSON))


def fold_events(
    session: Session, known: Mapping[str, int], events_by_job: Mapping[str, list[Event]]
) -> None:
    """Fold each job's events (in seq order) into its row, created if `known` (its
    `job_heads`) lacks it. Rows there are read and written without the ORM's unit of
    work: the jobs whose folds changed the same columns share one UPDATE."""
    ids = [job_id for job_id, events in events_by_job.items() if events]
    stored = [job_id for job_id in ids if job_id in known]
    rows: dict[str, SimpleNamespace] = {}
    if stored:
        columns = Job.__table__.c
        query = select(columns.id, *(columns[c] for c in FOLDED)).where(columns.id.in_(stored))
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update()
        rows = {row.id: SimpleNamespace(**row._mapping) for row in session.execute(query)}
    changes: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
    for job_id in ids:
        events = events_by_job[job_id]
        row = rows.get(job_id)
        if row is None:  # a job no row holds yet (a plain Celery task): through the ORM
            job = new_job_row(events[0])
            session.add(job)
            for event in events:
                apply_event(job, event)
            continue
        before = dict(vars(row))
        for event in events:
            apply_event(row, event)  # type: ignore[arg-type]  # a row's columns, as attributes
        changed = tuple(c for c in FOLDED if getattr(row, c) != before[c])
        if changed:
            new = (job_id, *(getattr(row, c) for c in changed))
            changes.setdefault(changed, []).append(new)
    for changed, rows_changed in changes.items():
        _update_jobs(session, changed, rows_changed)


def _update_jobs(session: Session, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    """Set `columns` of jobs: each row is (id, *values), by `_run_many`."""
    json_at = {i for i, c in enumerate(columns, start=1) if c in _JSON_FOLDED}
    as_text = [
        tuple(_json_text(v) if i in json_at else v for i, v in enumerate(row)) for row in rows
    ]
    pg_sets = ", ".join(f"{c} = u.{c}" + ("::json" if c in _JSON_FOLDED else "") for c in columns)
    pg_arrays = ", ".join(f"%s::{_PG_ARRAY[c]}[]" for c in ("id", *columns))
    statements = {
        "sqlite": "UPDATE jobs SET "
        + ", ".join(f"{c} = ?{i}" for i, c in enumerate(columns, start=2))
        + " WHERE id = ?1",
        "postgresql": f"UPDATE jobs SET {pg_sets} FROM unnest({pg_arrays})"
        f" AS u(id, {', '.join(columns)}) WHERE jobs.id = u.id",
    }
    if not _run_many(session, statements, as_text):  # pragma: no cover
        table = cast(Table, Job.__table__)  # another database: through SQLAlchemy's types
        statement = (
            update(table)
            .where(table.c.id == bindparam("job_id"))
            .values({c: bindparam(f"new_{c}") for c in columns})
        )
        keys = ("job_id", *(f"new_{c}" for c in columns))
        session.execute(statement, [dict(zip(keys, row, strict=True)) for row in rows])


# Each column's PostgreSQL array type, for the UPDATE over arrays (JSON goes as text).
_PG_ARRAY = {
    c: {Integer: "int", Float: "float8"}.get(type(Job.__table__.c[c].type), "text")
    for c in ("id", *FOLDED)
}


def _json_text(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


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
