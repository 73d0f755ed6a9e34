"""Many new rows into PostgreSQL with COPY ... FROM STDIN, failing as SQLAlchemy fails.

Under gevent, psycopg's executemany (a pipeline of one INSERT a row) cost about 0.1 ms
of the web process's CPU a row of the jobs table, half of what a whole bulk job may
cost; COPY formats the rows in psycopg's C code and sends them in a few writes
(about 0.015 ms a row). The rows are all or nothing, as in one INSERT.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import psycopg
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError


def copies(engine: Engine) -> bool:
    """Whether `copy_rows` can write through this engine (PostgreSQL with psycopg 3)."""
    return engine.dialect.name == "postgresql" and engine.dialect.driver == "psycopg"


def copy_rows(
    engine: Engine, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """`rows` (values in the order of `columns`; JSON as its text) in one transaction.

    A refusal raises SQLAlchemy's wrapping of the driver's error (IntegrityError for a
    duplicate key, OperationalError for a lost connection, which is then invalidated),
    as `Connection.execute` would."""
    statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
    with engine.begin() as conn:
        raw = conn.connection.driver_connection
        assert isinstance(raw, psycopg.Connection)
        try:
            with raw.cursor() as cursor, cursor.copy(statement) as copy:
                for row in rows:
                    copy.write_row(row)
        except psycopg.Error as exc:
            lost = engine.dialect.is_disconnect(cast(Any, exc), conn.connection, None)
            if lost:
                conn.invalidate(exc)  # the pool must not hand it out again
            wrapped = DBAPIError.instance(
                statement,
                None,
                exc,
                psycopg.Error,
                connection_invalidated=lost,
                dialect=engine.dialect,
            )
            assert isinstance(wrapped, DBAPIError)
            raise wrapped from exc
