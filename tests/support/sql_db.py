"""A database of our own on a shared PostgreSQL server (DATABASE_URL set for the tests)."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from sqlalchemy import make_url, text

from workers.models import make_engine


def _run(base_url: str, sql: str) -> None:
    engine = make_engine(base_url)
    try:
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(text(sql))
    finally:
        engine.dispose()


def create_test_database(base_url: str) -> tuple[str, Callable[[], None]]:
    """(URL of a new `agentdeck_test_<random>` database, a function that drops it)."""
    name = f"agentdeck_test_{uuid.uuid4().hex[:12]}"
    _run(base_url, f'CREATE DATABASE "{name}"')
    url = make_url(base_url).set(database=name).render_as_string(hide_password=False)

    def drop() -> None:
        _run(base_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return url, drop
