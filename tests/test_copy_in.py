"""COPY of new job rows into PostgreSQL (the submitter's bulk insert) fails as an
INSERT through SQLAlchemy fails: the submitter tells a duplicate key, a value the
database refuses and a lost connection apart by SQLAlchemy's exception classes."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DataError, IntegrityError, OperationalError

from webapp.copy_in import copies, copy_rows
from workers.models import Job

COLUMNS = ["id", "name", "state", "input", "idempotency_key", "owner_id", "created_at"]
COLUMNS += ["retries", "last_seq", "run_no"]


@pytest.fixture
def pg(sql_engine: Engine) -> Iterator[Engine]:
    if not copies(sql_engine):
        pytest.skip("COPY is for PostgreSQL (DATABASE_URL)")
    yield sql_engine


def row(owner: str, key: str | None = None, input_text: str = '{"text": "é \\u0000"}') -> tuple:
    return (str(uuid.uuid4()), "t", "PENDING", input_text, key, owner, time.time(), 0, 0, 0)


def stored(engine: Engine, owner: str) -> list[Any]:
    with engine.connect() as conn:
        query = select(Job.input, Job.idempotency_key, Job.created_at).where(Job.owner_id == owner)
        return [tuple(r) for r in conn.execute(query.order_by(Job.created_at))]


def test_rows_are_stored_as_given(pg: Engine) -> None:
    # given rows with JSON as text, NULLs and floats
    owner = f"copy-{uuid.uuid4().hex}"
    rows = [row(owner), row(owner, "k1"), row(owner, input_text="null")]
    # when they are copied
    copy_rows(pg, Job.__tablename__, COLUMNS, rows)
    # then each is stored as given
    assert stored(pg, owner) == [
        ({"text": "é \u0000"}, None, rows[0][6]),
        ({"text": "é \u0000"}, "k1", rows[1][6]),
        (None, None, rows[2][6]),
    ]


@pytest.mark.parametrize(
    ("bad", "error"),
    [
        ({"key": "used"}, IntegrityError),  # the owner's idempotency key, used before
        ({"key": "a\x00b"}, DataError),  # text PostgreSQL cannot hold
        ({"input_text": "not json"}, DataError),
    ],
)
def test_one_refused_row_refuses_all_with_the_error_an_insert_raises(
    pg: Engine, bad: dict[str, str], error: type[Exception]
) -> None:
    # given an owner whose key "used" is stored
    owner = f"copy-{uuid.uuid4().hex}"
    copy_rows(pg, Job.__tablename__, COLUMNS, [row(owner, "used"), row(owner)])
    # when a list with one row the database refuses is copied
    kw: dict[str, Any] = {"key": bad.get("key")}
    if "input_text" in bad:
        kw["input_text"] = bad["input_text"]
    with pytest.raises(error) as caught:
        copy_rows(pg, Job.__tablename__, COLUMNS, [row(owner), row(owner, **kw), row(owner)])
    # then SQLAlchemy's class of the error is raised (the connection is not lost)
    assert not caught.value.connection_invalidated  # type: ignore[attr-defined]
    # and none of the list is stored
    assert len(stored(pg, owner)) == 2


def test_a_lost_connection_is_told_and_not_handed_out_again(pg: Engine) -> None:
    # given an engine that does not test connections at checkout, and its connection
    # ended by the server while idle in the pool
    engine = create_engine(pg.url, pool_size=1, pool_pre_ping=False)
    owner = f"copy-{uuid.uuid4().hex}"
    try:
        with engine.connect() as conn:
            pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        with pg.connect() as conn:
            # (waiting, up to 5 s, until the server has ended it)
            conn.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid})
            conn.commit()
        # when rows are copied through it
        with pytest.raises(OperationalError) as caught:
            copy_rows(engine, Job.__tablename__, COLUMNS, [row(owner), row(owner)])
        # then the loss is told as one
        assert caught.value.connection_invalidated
        # and the next copy gets a new connection
        copy_rows(engine, Job.__tablename__, COLUMNS, [row(owner), row(owner)])
        with pg.connect() as conn:
            query = select(func.count()).where(Job.owner_id == owner)
            assert conn.execute(query).scalar_one() == 2
    finally:
        engine.dispose()
