"""A Redis database of our own on a shared server (REDIS_URL set for the tests).

Each test session claims one database index (1..15) that is empty: it writes a
claim key there with SET NX and keeps the index only if the claim is the only
key. Celery's broker queues and Agentdeck's keys then all live in that
database, and the session flushes it at the end. A database claimed by a
session on this host whose process is gone is stale and is taken over.
"""

from __future__ import annotations

import contextlib
import os
import socket
import uuid
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

import psutil
import redis

CLAIM_KEY = "agentdeck-test:claimed-by"
DB_INDEXES = range(1, 16)


def with_db(url: str, db: int) -> str:
    """`url` pointing at database `db` (the path of a redis:// URL)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", parts.query, parts.fragment))


def _stale(claim: str) -> bool:
    host, _, rest = claim.partition(":")
    pid = rest.partition(":")[0]
    return host == socket.gethostname() and pid.isdigit() and not psutil.pid_exists(int(pid))


def claim_redis_db(base_url: str) -> tuple[str, Callable[[], None]]:
    """(URL of an empty database now ours, a function that flushes and frees it)."""
    token = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex}"
    for db in DB_INDEXES:
        url = with_db(base_url, db)
        client = redis.Redis.from_url(url, decode_responses=True, socket_timeout=5)
        try:
            size = client.dbsize()
            if size and _stale(str(client.get(CLAIM_KEY) or "")):
                client.flushdb()
                size = 0
            if size or not client.set(CLAIM_KEY, token, nx=True):
                continue
            if client.dbsize() == 1:
                return url, _releaser(url)
            if client.get(CLAIM_KEY) == token:  # someone else wrote here at the same moment
                client.delete(CLAIM_KEY)
        except redis.ResponseError:  # fewer databases configured: SELECT failed
            break
        finally:
            client.close()
    raise RuntimeError(
        f"no empty Redis database among {DB_INDEXES.start}..{DB_INDEXES.stop - 1} at "
        f"{base_url}; flush the ones other sessions left behind"
    )


def _releaser(url: str) -> Callable[[], None]:
    def release() -> None:
        client = redis.Redis.from_url(url, socket_timeout=5)
        with contextlib.suppress(redis.RedisError):
            client.flushdb()
        client.close()

    return release
