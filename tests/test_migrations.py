"""The migrations build exactly the schema of workers/models.py, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine

from launcher.migrate import current_revision, head_revision, upgrade
from tests.support import Platform
from workers.models import Base, make_engine


def _diff(engine: Engine) -> list[object]:
    with engine.connect() as conn:
        return list(compare_metadata(MigrationContext.configure(conn), Base.metadata))


def test_fresh_sqlite_upgrade_matches_models(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'sub' / 'agentdeck.db'}"
    assert current_revision(url) is None
    upgrade(url)
    upgrade(url)  # idempotent
    assert current_revision(url) == head_revision()
    engine = make_engine(url)
    try:
        assert _diff(engine) == []
        with engine.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        index_names = {ix["name"] for ix in inspect(engine).get_indexes("jobs")}
        assert {
            "ix_jobs_created",
            "ix_jobs_state_created",
            "ix_jobs_agent_created",
            "ix_jobs_name_created",
        } <= index_names
    finally:
        engine.dispose()


def test_session_database_is_at_head_and_matches_models(
    platform: Platform, sql_engine: Engine
) -> None:
    assert current_revision(platform.database_url) == head_revision()
    assert _diff(sql_engine) == []
