"""Storing and sending accepted jobs, in batches: one SQL commit and one broker round trip
for every job that arrived meanwhile, from one request (bulk) or from many at once.

The order per job stays what it was: its row is committed, then its `job.queued`
is in Redis, then its task message reaches the broker (a worker cannot see a job
before its row and its first event). What changes is that jobs share the steps:

- *group commit*: a request that finds fewer than `LEADERS` batches under way leads
  one; requests that come meanwhile add their jobs to the next, which a leader
  runs, until its own jobs are done; it then hands the lead to the oldest waiting
  request. No background thread: a leader is a request that had to wait anyway.
  Batches of different jobs need no order among them, so several run at once:
  their round trips (SQL, Redis) overlap;
- the rows go in one COPY (PostgreSQL) or one INSERT (executemany) and one commit;
  when that fails on one row (an idempotency key used before, text the database
  refuses), each row is tried alone, so the others are not refused with it;
- the task messages are built by Celery (`amqp.create_task_message`) and sent
  through kombu's publish batch (one pipeline of LPUSHes); each `job.queued` is
  emitted by the `before_task_publish` receiver without waiting, and the
  publisher is flushed once, before the pipeline goes.

Celery's `send_task` is not used: for every task it subscribes the app's result
consumer to the task's result channel (a Redis round trip, and a subscription
the web process never reads and never drops), and reprs the arguments with its
slow `saferepr`.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis
from celery.utils.nodenames import anon_nodename
from sqlalchemy import JSON, delete, select
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError

from webapp.broker_pool import broker_connection
from webapp.copy_in import copies, copy_rows
from webapp.errors import ApiError
from webapp.services import Services
from workers.events import EventType
from workers.models import Job
from workers.publisher import get_publisher
from workers.redis_urls import is_redis
from workers.replay_log import head_of
from workers.signals import queued_flushed_by_sender

log = logging.getLogger("agentdeck.submitter")

BATCH_MAX = 1000  # jobs per commit and per broker pipeline
LEADERS = 4  # batches under way at once
ARGSREPR_MAX = 1024  # Celery's own cap on the argsrepr header
QUEUED_FLUSH_TIMEOUT = 5.0  # as long as a lone job.queued was waited for


@dataclass
class Pending:
    """One accepted job on its way: its row, its task, and then what became of it."""

    row: dict[str, Any]  # the jobs table's columns
    task: str
    args: list[Any]
    options: dict[str, Any]  # queue, priority, soft_time_limit, time_limit
    before_send: Callable[[str], None] | None = None
    created: bool = False  # stored (and sent, once `sent`)
    sent: bool = False
    existing: Job | None = None  # the job its idempotency key made before
    error: ApiError | None = None

    @property
    def id(self) -> str:
        return str(self.row["id"])

    @property
    def job(self) -> Job | None:
        """The job as stored (made when asked: a bulk answer needs only ids)."""
        if self.error is not None:
            return None
        if self.existing is not None:
            return self.existing
        return Job(**self.row) if self.created else None


@dataclass
class _Ticket:
    items: list[Pending]
    done: bool = False
    lead: bool = False  # handed the lead by the request before it
    wake: threading.Event = field(default_factory=threading.Event)


class Submitter:
    def __init__(self, svc: Services) -> None:
        self.svc = svc
        self._lock = threading.Lock()
        self._waiting: deque[_Ticket] = deque()
        self._leaders = 0

    def submit(self, items: list[Pending]) -> None:
        """Store and send `items`; each ends with `job` set, or with `error`."""
        if not items:
            return
        ticket = _Ticket(items)
        with self._lock:
            self._waiting.append(ticket)
            lead = self._leaders < LEADERS
            if lead:
                self._leaders += 1
        while not lead:
            ticket.wake.wait()
            ticket.wake.clear()
            with self._lock:
                lead = ticket.lead  # handed the lead: lead (or pass it on) even if done
                if ticket.done and not lead:
                    return
        self._lead_until(ticket)

    def _lead_until(self, own: _Ticket) -> None:
        try:
            while True:
                with self._lock:
                    if own.done:
                        break
                    batch = self._take() if self._waiting else None
                if batch is None:  # another leader runs our jobs: wait for it
                    own.wake.wait()
                    own.wake.clear()
                    continue
                try:
                    self._run(batch)
                finally:
                    with self._lock:
                        for ticket in batch:
                            ticket.done = True
                            if ticket is not own:
                                ticket.wake.set()
        finally:
            with self._lock:
                # The oldest request not led yet (another leader may have picked one).
                nxt = next((t for t in self._waiting if not t.lead), None)
                if nxt is not None:
                    nxt.lead = True
                    nxt.wake.set()
                else:
                    self._leaders -= 1

    def _take(self) -> list[_Ticket]:
        """The oldest waiting tickets, up to BATCH_MAX jobs (at least one ticket: a
        leader's own is waiting until a batch takes it)."""
        batch = [self._waiting.popleft()]
        size = len(batch[0].items)
        while self._waiting and size + len(self._waiting[0].items) <= BATCH_MAX:
            ticket = self._waiting.popleft()
            batch.append(ticket)
            size += len(ticket.items)
        return batch

    def _run(self, tickets: list[_Ticket]) -> None:
        items = [item for ticket in tickets for item in ticket.items]
        try:
            self._store(items)
            created = [item for item in items if item.created and item.error is None]
            for item in created:
                self.svc.hub.owners.note(item.id, item.row["owner_id"])
            ready = [item for item in created if self._before_send(item)]
            if ready:
                self._send(ready)
        except Exception as exc:  # a bug: every job not sent fails (and is undone), none hangs
            log.exception("submitting %d jobs failed", len(items))
            for item in items:
                if item.sent or item.existing is not None or item.error is not None:
                    continue
                if item.created:
                    self._not_sent(item, exc, 500, "internal_error")
                else:
                    item.error = ApiError(500, "internal_error", f"not submitted: {exc}")

    # -- SQL --------------------------------------------------------------------------
    def _insert(self, items: list[Pending]) -> None:
        """The rows in one transaction: on PostgreSQL by COPY (see `copy_in`), else in
        one INSERT run as the driver's executemany (SQLAlchemy's per-row parameter
        processing cost more than the database's work). A lone row is one INSERT: a
        COPY takes one round trip more."""
        columns = list(items[0].row)  # every row has these keys, in this order
        json_at = [i for i, c in enumerate(columns) if c in JSON_COLUMNS]
        rows = []
        for item in items:  # (a generator per row was a tenth of a bulk's CPU)
            values = list(item.row.values())
            for i in json_at:
                if values[i] is not None:
                    values[i] = json.dumps(values[i])
            rows.append(tuple(values))
        engine = self.svc.engine
        if len(rows) > 1 and copies(engine):
            copy_rows(engine, Job.__tablename__, columns, rows)
            return
        marks = ", ".join(_placeholders(engine.dialect.paramstyle, len(columns)))
        sql = f"INSERT INTO {Job.__tablename__} ({', '.join(columns)}) VALUES ({marks})"
        with engine.begin() as conn:
            conn.exec_driver_sql(sql, rows)  # type: ignore[arg-type]

    def _store(self, items: list[Pending]) -> None:
        try:
            self._insert(items)
        except (IntegrityError, DBAPIError) as exc:
            if not isinstance(exc, IntegrityError) and _connection_lost(exc):
                self._refuse_all(items, exc)
                return
            for item in items:  # one row refused them all: find it
                self._store_one(item)
            return
        except SQLAlchemyError as exc:
            self._refuse_all(items, exc)
            return
        for item in items:
            item.created = True

    def _store_one(self, item: Pending) -> None:
        try:
            self._insert([item])
        except IntegrityError:
            existing = self._by_idempotency_key(item.row["owner_id"], item.row["idempotency_key"])
            if existing is None:
                item.error = ApiError(409, "conflict", "the job could not be stored: a conflict")
            else:
                item.existing = existing
            return
        except SQLAlchemyError as exc:
            item.error = _not_stored(exc)
            return
        item.created = True

    def _refuse_all(self, items: list[Pending], exc: SQLAlchemyError) -> None:
        log.warning("storing %d jobs failed: %s", len(items), exc)
        for item in items:
            item.error = _not_stored(exc)

    def _by_idempotency_key(self, owner_id: str | None, key: str | None) -> Job | None:
        if key is None:
            return None
        with self.svc.sessions() as s:
            return s.scalar(select(Job).where(Job.owner_id == owner_id, Job.idempotency_key == key))

    def _before_send(self, item: Pending) -> bool:
        if item.before_send is None:
            return True
        try:
            item.before_send(item.id)
        except Exception as exc:
            log.exception("preparing job %s failed", item.id)
            self._not_sent(item, exc, 500, "internal_error")
            return False
        return True

    # -- the broker ---------------------------------------------------------------------
    def _send(self, items: list[Pending]) -> None:
        celery = self.svc.celery
        amqp = celery.amqp
        try:
            with broker_connection(celery) as conn:
                producer = amqp.Producer(conn, auto_declare=False)
                # Large enough never to flush before the end (job.queued goes first).
                with producer.batch(max_size=10 * len(items) + 10):
                    token = queued_flushed_by_sender.set(True)
                    sender = _Sender.of(celery, producer)
                    try:
                        for item in items:
                            sender.send(item)
                    finally:
                        queued_flushed_by_sender.reset(token)
                    # Every job.queued is in Redis before the broker has any of the tasks.
                    get_publisher().flush(QUEUED_FLUSH_TIMEOUT)
            for item in items:
                item.sent = True
        except ApiError as exc:  # the broker pool is starved
            for item in items:
                self._not_sent(item, exc, exc.status, exc.code)
        except Exception as exc:
            log.warning("sending %d jobs failed: %s", len(items), exc)
            for item in items:
                self._not_sent(item, exc, 503, "broker_unavailable")

    def _not_sent(self, item: Pending, exc: BaseException, status: int, code: str) -> None:
        """Undo a job whose task never reached the broker, so no row waits forever:
        the row goes if nothing was said about the job yet, else the job fails."""
        message = exc.message if isinstance(exc, ApiError) else f"the job could not be sent: {exc}"
        item.error = ApiError(status, code, message)
        svc = self.svc
        try:
            said, _ = head_of(svc.redis, svc.settings.keys, item.id)
        except redis.RedisError:
            said = 0  # Redis away: job.queued cannot have been stored either
        try:
            if said == 0:
                with svc.sessions.begin() as s:
                    s.execute(delete(Job).where(Job.id == item.id))
                return
            error = f"not sent to the broker: {type(exc).__name__}: {exc}"
            data = {"error": error, "traceback": ""}
            get_publisher().emit(item.id, EventType.JOB_FAILED, data, wait=True)
        except Exception:
            log.exception("could not undo job %s, which was not sent", item.id)


@dataclass(frozen=True)
class _Sender:
    """What every message of a batch shares, looked up once: Celery's configuration is a
    chain of mappings, and its lookups were a tenth of the sending."""

    producer: Any
    create_task_message: Callable[..., Any]
    send_task_message: Callable[..., Any]
    default_queue: str
    reply_to: str
    origin: str
    declare: dict[str, Any]

    @classmethod
    def of(cls, celery: Any, producer: Any) -> _Sender:
        amqp = celery.amqp
        conf = celery.conf
        return cls(
            producer,
            amqp.create_task_message,
            amqp.send_task_message,
            conf.task_default_queue,
            celery.thread_oid,
            _origin(),
            # Redis delivers to a queue by name: nothing to declare. An AMQP
            # exchange drops a message for a queue nobody declared yet.
            {"declare": []} if is_redis(str(conf.broker_url)) else {},
        )

    def send(self, item: Pending) -> None:
        options = item.options
        args = item.args
        argsrepr = repr(args)
        if len(argsrepr) > ARGSREPR_MAX:
            argsrepr = argsrepr[: ARGSREPR_MAX - 3] + "..."
        message = self.create_task_message(
            item.id,
            item.task,
            args,
            {},
            time_limit=options.get("time_limit"),
            soft_time_limit=options.get("soft_time_limit"),
            reply_to=self.reply_to,
            origin=self.origin,
            argsrepr=argsrepr,
            kwargsrepr="{}",
        )
        extra: dict[str, Any] = {}
        if options.get("priority") is not None:
            extra["priority"] = options["priority"]
        self.send_task_message(
            self.producer,
            item.task,
            message,
            queue=options.get("queue") or self.default_queue,
            retry=False,  # a batch only buffers here; its pipeline fails or succeeds whole
            **self.declare,
            **extra,
        )


JSON_COLUMNS = frozenset(c.name for c in Job.__table__.columns if isinstance(c.type, JSON))


def _placeholders(paramstyle: str, n: int) -> list[str]:
    if paramstyle == "qmark":
        return ["?"] * n
    if paramstyle in ("format", "pyformat"):
        return ["%s"] * n
    if paramstyle == "numeric":
        return [f":{i + 1}" for i in range(n)]
    raise ValueError(f"no placeholders for the paramstyle {paramstyle!r}")


@functools.cache
def _origin() -> str:
    """The messages' `origin` header, as Celery fills it in (Celery asks per message; a
    batch asks once)."""
    return str(anon_nodename())


def _connection_lost(exc: DBAPIError) -> bool:
    return bool(exc.connection_invalidated) or type(exc.orig).__name__ in (
        "OperationalError",
        "InterfaceError",
    )


def _not_stored(exc: SQLAlchemyError) -> ApiError:
    if isinstance(exc, DBAPIError) and not _connection_lost(exc):
        reason = str(exc.orig).splitlines()[0][:300] if exc.orig is not None else str(exc)
        return ApiError(422, "invalid_input", f"the database refused the job: {reason}")
    return ApiError(503, "database_unavailable", "the job could not be stored; try again")
