"""The test session's platform: Redis, SQL (migrated) and the env for child processes.

Built from the launcher's own pieces. Redis is REDIS_URL's server when set
(on a database index of our own, see `redis_db`), else an embedded Valkey on
a free port. SQL is a new database on DATABASE_URL's PostgreSQL server when
set, else a SQLite file in a temporary directory.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from launcher.commands import REPO_ROOT, child_env
from launcher.embedded_redis import EmbeddedRedis
from launcher.migrate import upgrade
from launcher.net import free_port
from tests.support.redis_db import claim_redis_db
from tests.support.sql_db import create_test_database

log = logging.getLogger("agentdeck.tests")

OUTPUT_ROOT = REPO_ROOT / "test-output"
# Variables the platform sets for the test process itself and for its children.
EXPORTED = (
    "REDIS_URL",
    "DATABASE_URL",
    "AGENTDECK_DATA_DIR",
    "AGENTDECK_ADMIN_TOKEN",
    "AGENTDECK_AGENT_MODULES",
)
TEST_AGENTS = "tests.fault_agents,tests.durable_agents"


@dataclass
class Platform:
    redis_url: str
    database_url: str
    data_dir: Path  # AGENTDECK_DATA_DIR of the children (temporary)
    output_dir: Path  # logs, screenshots: test-output/<run>/
    admin_token: str
    embedded_redis: EmbeddedRedis | None = None
    cleanups: list[Callable[[], None]] = field(default_factory=list)

    @property
    def exported(self) -> dict[str, str]:
        return {
            "REDIS_URL": self.redis_url,
            "DATABASE_URL": self.database_url,
            "AGENTDECK_DATA_DIR": str(self.data_dir),
            "AGENTDECK_ADMIN_TOKEN": self.admin_token,
            "AGENTDECK_AGENT_MODULES": TEST_AGENTS,
        }

    def env(self, base: Mapping[str, str] | None = None, /, **extra: str) -> dict[str, str]:
        """The environment for a child process: `base` (os.environ) plus the platform's."""
        return child_env(os.environ if base is None else base, {**self.exported, **extra})

    def close(self) -> None:
        while self.cleanups:
            cleanup = self.cleanups.pop()
            try:
                cleanup()
            except Exception:
                log.exception("platform cleanup %r failed", cleanup)


def new_output_dir() -> Path:
    run = f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    path = OUTPUT_ROOT / run
    path.mkdir(parents=True, exist_ok=True)
    latest = OUTPUT_ROOT / "latest"
    with contextlib.suppress(OSError):
        if latest.is_symlink() or latest.exists():
            latest.unlink()
        latest.symlink_to(run)
    return path


def start_platform(
    environ: Mapping[str, str] | None = None, *, redis_url: str | None = None
) -> Platform:
    """Start (or claim) Redis and SQL, migrate, and return the platform. Close it after.
    `redis_url`: a Redis the caller owns (a Sentinel set), used as it is."""
    env = dict(os.environ if environ is None else environ)
    output_dir = new_output_dir()
    tmp = Path(tempfile.mkdtemp(prefix="agentdeck-test-"))
    cleanups: list[Callable[[], None]] = [lambda: shutil.rmtree(tmp, ignore_errors=True)]
    platform: Platform | None = None
    try:
        embedded: EmbeddedRedis | None = None
        if redis_url:
            pass
        elif env.get("REDIS_URL"):
            redis_url, release = claim_redis_db(env["REDIS_URL"])
            cleanups.append(release)
        else:
            embedded = EmbeddedRedis(
                tmp / "valkey",
                port=free_port(),
                config={"logfile": str(output_dir / "valkey.log")},
            )
            redis_url = embedded.start()
            cleanups.append(embedded.stop)
        if env.get("DATABASE_URL"):
            database_url, drop = create_test_database(env["DATABASE_URL"])
            cleanups.append(drop)
        else:
            database_url = f"sqlite:///{tmp / 'agentdeck.db'}"
        upgrade(database_url)
        platform = Platform(
            redis_url=redis_url,
            database_url=database_url,
            data_dir=tmp / "data",
            output_dir=output_dir,
            admin_token=env.get("AGENTDECK_ADMIN_TOKEN") or "test-admin-" + secrets.token_hex(8),
            embedded_redis=embedded,
            cleanups=cleanups,
        )
        platform.data_dir.mkdir(parents=True, exist_ok=True)
        return platform
    except BaseException:
        Platform("", "", tmp, output_dir, "", cleanups=cleanups).close()
        raise


def start_own_platform(session: Platform) -> Platform:
    """A platform of its own on the session's servers, for tests whose workers must not take
    the session's jobs (nor it theirs): a new, empty database on the session's Redis server
    (REDIS_URL) or an embedded Valkey of its own, and a new SQL database (on the session's
    PostgreSQL server, else a SQLite file). Close it after."""
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    if session.embedded_redis is None:
        env["REDIS_URL"] = session.redis_url  # claim_redis_db takes another, empty, index
    if session.database_url.startswith("postgresql"):
        env["DATABASE_URL"] = session.database_url
    own = start_platform(env)
    with contextlib.suppress(OSError):  # test-output/latest stays the session's folder
        latest = OUTPUT_ROOT / "latest"
        latest.unlink()
        latest.symlink_to(session.output_dir.name)
    return own
