"""The one place a client on the event bus's Redis is built.

The event bus is every key and channel of `workers.keys`: pub/sub, replay logs,
presence, counters. It lives on `Settings.events_url` (AGENTDECK_EVENTS_URL),
which is the broker's Redis unless set, so Celery's broker and Agentdeck's
events can scale and fail separately. Celery's own clients (broker, results)
are Celery's business and never come from here. A Sentinel URL gives a client
on the set's current primary (`workers/redis_urls.py`).
"""

from __future__ import annotations

import redis

from workers.redis_urls import is_sentinel, redis_client
from workers.settings import Settings


def events_redis(
    settings: Settings,
    *,
    socket_timeout: float = 5.0,
    socket_connect_timeout: float = 2.0,
    health_check_interval: int = 0,
    pooled_for_many: bool = False,
) -> redis.Redis:
    """A client (with its own connection pool) on the event bus's Redis.

    `pooled_for_many`: for a process of many greenlets (the web): the pool holds up to
    `Settings.redis_connections` and a caller past that waits for a free one (up to its
    socket timeout) instead of failing at once, as redis-py's default pool of 100 does.
    Through Sentinel the pool is as large, but does not wait (redis-py has no waiting
    Sentinel pool)."""
    extra: dict[str, float] = {}
    if pooled_for_many:
        extra = {"max_connections": settings.redis_connections}
        if not is_sentinel(settings.events_url):
            extra["wait_for_connection"] = socket_timeout
    return redis_client(
        settings.events_url,
        socket_timeout=socket_timeout,
        socket_connect_timeout=socket_connect_timeout,
        health_check_interval=health_check_interval,
        **extra,
    )
