"""Redis and broker URLs: plain Redis, Redis Sentinel, RabbitMQ; clients built from them.

Agentdeck takes Sentinel URLs in kombu's own form, so one URL serves the
Celery broker, the result backend and Agentdeck's events alike:

    sentinel://[:password@]host:port[/db][;sentinel://host:port[/db]...][?master_name=NAME]

one `sentinel://` part per Sentinel, separated by `;`; the password (if any)
is the Redis primary's; `master_name` (default `mymaster`) names the set the
Sentinels watch. kombu and Celery take the master name from their transport
options, so `celery_sentinel_options` splits it off for them.

A client built here on a Sentinel URL asks the Sentinels for the current
primary on every new connection (redis-py's `SentinelManagedConnection`), so
after a failover the next reconnect reaches the new primary. A primary that
was failed over while it still runs (`SENTINEL FAILOVER`, a partition) keeps
its clients' connections, and takes their writes, until the Sentinels turn
it into a replica some seconds later; `primary_moved` is how long-lived
users (the hub's subscription, heartbeats, the publisher) notice sooner.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import redis
from redis.sentinel import Sentinel, SentinelConnectionPool

DEFAULT_MASTER = "mymaster"
DEFAULT_SENTINEL_PORT = 26379
REDIS_SCHEMES = ("redis", "rediss", "unix", "sentinel")
AMQP_SCHEMES = ("amqp", "amqps", "pyamqp")


class RedisUrlError(ValueError):
    """A URL Agentdeck cannot build a Redis client from."""


@dataclass(frozen=True)
class SentinelUrl:
    sentinels: tuple[tuple[str, int], ...]
    master_name: str = DEFAULT_MASTER
    db: int = 0
    username: str | None = None
    password: str | None = None


def scheme(url: str) -> str:
    return url.split("://", 1)[0].lower() if "://" in url else ""


def is_redis(url: str) -> bool:
    """A Redis broker (plain or through Sentinel): kombu's Redis transports apply."""
    return scheme(url) in REDIS_SCHEMES


def is_sentinel(url: str) -> bool:
    return scheme(url) == "sentinel"


def is_amqp(url: str) -> bool:
    return scheme(url) in AMQP_SCHEMES


def parse_sentinel(url: str) -> SentinelUrl:
    """The Sentinels, master name, db and credentials of a `sentinel://` URL."""
    sentinels: list[tuple[str, int]] = []
    master, db, username, password = DEFAULT_MASTER, 0, None, None
    for part in url.split(";"):
        part = part.strip()
        if not part:
            continue
        if not is_sentinel(part):
            raise RedisUrlError(f"every part of a Sentinel URL starts sentinel://, got {part!r}")
        u = urlsplit(part)
        if not u.hostname:
            raise RedisUrlError(f"a Sentinel URL part without a host: {part!r}")
        sentinels.append((u.hostname, u.port or DEFAULT_SENTINEL_PORT))
        if u.password is not None and password is None:
            password = unquote(u.password)
            username = unquote(u.username) if u.username else None
        path = u.path.strip("/")
        if path:
            try:
                db = int(path)
            except ValueError as exc:
                raise RedisUrlError(f"a Sentinel URL's db must be a number: {part!r}") from exc
        names = parse_qs(u.query).get("master_name")
        if names:
            master = names[-1]
    if not sentinels:
        raise RedisUrlError("a Sentinel URL names no Sentinel")
    return SentinelUrl(tuple(sentinels), master, db, username, password)


def without_query(url: str) -> str:
    """The URL with `?master_name=...` taken off each part (kombu and Celery want it bare)."""
    return ";".join(part.split("?", 1)[0] for part in url.split(";") if part.strip())


def celery_sentinel_options(url: str) -> tuple[str, dict[str, Any]]:
    """(URL for kombu/Celery, transport options) of a broker or result backend URL."""
    if not is_sentinel(url):
        return url, {}
    return without_query(url), {"master_name": parse_sentinel(url).master_name}


def primary_moved(client: redis.Redis) -> bool:
    """On a Sentinel client: ask the Sentinels where the primary is; True if it is not
    where the client's connections went (its idle ones are dropped then, so the next
    command reaches the new primary). False on a plain client, or if no Sentinel answers."""
    pool = client.connection_pool
    if not isinstance(pool, SentinelConnectionPool):
        return False
    before = pool.master_address
    try:
        now = pool.get_master_address()
    except redis.RedisError:
        return False
    return before is not None and tuple(now) != tuple(before)


def primary_address(client: redis.Redis) -> tuple[str, int] | None:
    """The Sentinels' current primary of a Sentinel client (None: plain, or no answer)."""
    pool = client.connection_pool
    if not isinstance(pool, SentinelConnectionPool):
        return None
    try:
        host, port = pool.get_master_address()
    except redis.RedisError:
        return None
    return str(host), int(port)


def redis_client(url: str, *, wait_for_connection: float = 0.0, **kwargs: Any) -> redis.Redis:
    """A redis-py client on `url`; on a Sentinel URL, on the set's current primary.

    With `wait_for_connection` (seconds) and `max_connections`, a caller finding every
    connection of the pool in use waits that long for one to come back; without, redis-py
    fails it at once ("Too many connections"), which a burst of greenlets meets."""
    if not is_sentinel(url):
        if wait_for_connection > 0:
            pool = redis.BlockingConnectionPool.from_url(url, timeout=wait_for_connection, **kwargs)
            return redis.Redis(connection_pool=pool)
        return redis.Redis.from_url(url, **kwargs)
    s = parse_sentinel(url)
    # Sentinels answer at once or not at all: short timeouts, so a dead one costs little.
    timeouts = {k: kwargs[k] for k in ("socket_timeout", "socket_connect_timeout") if k in kwargs}
    sentinel = Sentinel(list(s.sentinels), sentinel_kwargs=timeouts)
    client: redis.Redis = sentinel.master_for(
        s.master_name, db=s.db, username=s.username, password=s.password, **kwargs
    )
    return client


def without_credentials(url: str) -> str:
    """The URL with user and password taken out (every part of a Sentinel URL): to show."""
    out = []
    for part in url.split(";"):
        if "://" in part and "@" in part.split("://", 1)[1].split("/", 1)[0]:
            head, rest = part.split("://", 1)
            part = f"{head}://{rest.split('@', 1)[1]}"
        out.append(part)
    return ";".join(out)
