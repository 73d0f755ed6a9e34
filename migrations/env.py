"""Alembic environment: Agentdeck's models, the URL from Agentdeck's settings.

The URL comes, in order, from `config.attributes["database_url"]` (set by
`launcher.migrate.upgrade`), `sqlalchemy.url` in the ini file (unset by
default), or `workers.settings.get_settings().sql_url` (DATABASE_URL, else the
SQLite file in AGENTDECK_DATA_DIR). Engines come from `workers.models.make_engine`,
so SQLite is in WAL mode and `postgresql://` URLs use psycopg 3.
"""

from __future__ import annotations

from logging.config import fileConfig
from pathlib import Path

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection

from workers.models import Base, make_engine
from workers.settings import get_settings

config = context.config
target_metadata = Base.metadata

# Held for the migration's transaction so several processes starting at once
# (e.g. web replicas that each migrate on boot) run the migrations one at a time.
PG_LOCK_ID = 0x61646B  # "adk"

if config.config_file_name is not None and not config.attributes.get("skip_logging_config"):
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def database_url() -> str:
    url = config.attributes.get("database_url") or config.get_main_option("sqlalchemy.url")
    return str(url or get_settings().sql_url)


def _ensure_sqlite_dir(url: str) -> None:
    prefix = "sqlite:///"
    if url.startswith(prefix) and ":memory:" not in url:
        Path(url.removeprefix(prefix)).parent.mkdir(parents=True, exist_ok=True)


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER much
        compare_type=True,
    )


def _run(connection: Connection) -> None:
    _configure(connection)
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": PG_LOCK_ID})
        context.run_migrations()


def run_migrations_offline() -> None:
    context.configure(
        url=database_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    given = config.attributes.get("connection")
    if given is not None:
        _run(given)
        return
    url = database_url()
    _ensure_sqlite_dir(url)
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            _run(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
