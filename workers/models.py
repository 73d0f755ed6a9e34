"""SQL history: jobs (every Celery task, agents included) and their events, and the
accounts that own jobs (users and their API tokens). Workers live in Redis
(their heartbeats), not here.

SQLite (WAL) by default, PostgreSQL through DATABASE_URL. The schema is
managed by the Alembic migrations in `migrations/`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    Index,
    Integer,
    String,
    Text,
    create_engine,
    event,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker


class Base(DeclarativeBase):
    pass


class Job(Base):
    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), default="")  # Celery task name
    agent: Mapped[str | None] = mapped_column(String(255), nullable=True)
    state: Mapped[str] = mapped_column(String(16), default="PENDING")
    input: Mapped[Any] = mapped_column(JSON, nullable=True)
    args: Mapped[str | None] = mapped_column(Text, nullable=True)  # repr, as Flower shows
    kwargs: Mapped[str | None] = mapped_column(Text, nullable=True)
    result: Mapped[Any] = mapped_column(JSON, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    traceback: Mapped[str | None] = mapped_column(Text, nullable=True)
    queue: Mapped[str | None] = mapped_column(String(255), nullable=True)
    priority: Mapped[int | None] = mapped_column(Integer, nullable=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(255), nullable=True)
    owner_id: Mapped[str | None] = mapped_column(String(64), nullable=True)  # None: plain task
    # Durable runs: which run of the job may go on (a resumption adds one; a message of
    # an older run, redelivered late, stops at once).
    run_no: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    retry_of: Mapped[str | None] = mapped_column(String(64), nullable=True)
    parent_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    root_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    worker: Mapped[str | None] = mapped_column(String(255), nullable=True)
    retries: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[float] = mapped_column(Float)
    received_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    started_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    finished_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    updated_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    last_seq: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (
        Index("ix_jobs_created", "created_at"),
        Index("ix_jobs_state_created", "state", "created_at"),
        Index("ix_jobs_agent_created", "agent", "created_at"),
        Index("ix_jobs_name_created", "name", "created_at"),
        # monitoring: Flower's sorts and filters, children of a task
        Index("ix_jobs_received", "received_at"),
        Index("ix_jobs_started", "started_at"),
        Index("ix_jobs_worker_created", "worker", "created_at"),
        Index("ix_jobs_parent", "parent_id"),
        # accounts: a user's jobs; idempotency keys are scoped by owner
        Index("ix_jobs_owner_created", "owner_id", "created_at"),
        Index("ux_jobs_owner_idempotency", "owner_id", "idempotency_key", unique=True),
    )


class EventRow(Base):
    __tablename__ = "events"

    job_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    type: Mapped[str] = mapped_column(String(32))
    ts: Mapped[float] = mapped_column(Float)
    state: Mapped[str] = mapped_column(String(16))
    data: Mapped[Any] = mapped_column(JSON, nullable=True)


class RunStep(Base):
    """A recorded step of a durable run: what `ctx.run`, `ctx.ask`, `ctx.sleep`,
    `ctx.spawn` and `ctx.wait` did, so a resumed or replayed run returns it at once."""

    __tablename__ = "run_steps"

    job_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    idx: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(16))  # run | tool | ask | sleep | spawn | wait
    status: Mapped[str] = mapped_column(String(16))  # done | failed | waiting | cancelled
    result: Mapped[Any] = mapped_column(JSON, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    detail: Mapped[Any] = mapped_column(JSON, nullable=True)  # question and schema, children
    wake_at: Mapped[float | None] = mapped_column(Float, nullable=True)  # sleeps, ask timeouts
    started_at: Mapped[float] = mapped_column(Float)
    finished_at: Mapped[float | None] = mapped_column(Float, nullable=True)

    __table_args__ = (Index("ix_run_steps_waiting", "status", "kind", "wake_at"),)


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))  # viewer | operator | admin
    all_jobs: Mapped[bool] = mapped_column(Boolean, default=False)  # sees every job
    password_hash: Mapped[str | None] = mapped_column(String(255), nullable=True)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[float] = mapped_column(Float)


class ApiToken(Base):
    """A credential: an API token, a browser session or a one-time login link.

    Only a SHA-256 of the secret is kept (the secrets are random, so no slow hash
    is needed); `role` caps what the token may do below its user's role."""

    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16))  # api | session | login
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str | None] = mapped_column(String(16), nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    revoked_at: Mapped[float | None] = mapped_column(Float, nullable=True)


def make_engine(url: str) -> Engine:
    """An engine with SQLite set to WAL so readers never block the recorder."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)


def make_sessionmaker(engine: Engine) -> sessionmaker:
    return sessionmaker(engine, expire_on_commit=False)
