"""A platform whose Redis is an embedded Valkey of its own, for faults that hit Redis itself.

The session's platform may use a shared Redis (REDIS_URL): a test must not
pause, restart or wipe that. `start_own_redis_platform` builds a platform with
its own Valkey (append-only, so a restart keeps the data) whatever the
environment says, and its own SQL database (a new one on DATABASE_URL's
PostgreSQL server when there is one, else SQLite). `RedisControl` injects the
faults: restart (data kept or lost), pause (SIGSTOP) and resume.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
from collections.abc import Mapping
from pathlib import Path

import redis

from launcher.embedded_redis import EmbeddedRedis
from tests.support.platform import OUTPUT_ROOT, Platform, start_platform


def own_redis_environ(base: Mapping[str, str]) -> dict[str, str]:
    """`base` without REDIS_URL (so Valkey is embedded) and with a PostgreSQL server kept."""
    env = {k: v for k, v in base.items() if k != "REDIS_URL"}
    if not env.get("DATABASE_URL", "").startswith("postgresql"):
        env.pop("DATABASE_URL", None)  # SQLite: a new file of the platform's own
    return env


def start_own_redis_platform(
    base: Mapping[str, str] | None = None, *, keep_latest: Path | None = None
) -> Platform:
    """The platform; `keep_latest` points test-output/latest back at the session's folder."""
    platform = start_platform(own_redis_environ(os.environ if base is None else base))
    if keep_latest is not None:
        latest = OUTPUT_ROOT / "latest"
        with contextlib.suppress(OSError):
            latest.unlink()
            latest.symlink_to(keep_latest.name)
    if platform.embedded_redis is None:  # pragma: no cover - start_platform embeds without URL
        platform.close()
        raise RuntimeError("expected an embedded Valkey")
    return platform


class RedisControl:
    """Fault injection on an embedded Valkey: restart, wipe, pause, resume."""

    def __init__(self, server: EmbeddedRedis) -> None:
        self.server = server
        self.url = server.url
        self.paused = False

    def client(self, **kwargs: object) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=5, decode_responses=True, **kwargs)  # type: ignore[arg-type]

    def restart(self, *, lose_data: bool = False) -> None:
        """Stop (SIGTERM: the append-only file is synced), optionally delete the data,
        start again on the same port."""
        self.resume()
        self.server.stop()
        if lose_data:
            for name in ("appendonlydir", "dump.rdb"):
                path = self.server.data_dir / name
                if path.is_dir():
                    shutil.rmtree(path)
                else:
                    with contextlib.suppress(FileNotFoundError):
                        path.unlink()
        self.server.start()

    def pause(self) -> None:
        """SIGSTOP: connections stay open, nothing is answered (a network blackout)."""
        pid = self.server.pid
        if pid is None:
            raise RuntimeError("Valkey is not running")
        os.kill(pid, signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        pid = self.server.pid
        if self.paused and pid is not None:
            os.kill(pid, signal.SIGCONT)
        self.paused = False
