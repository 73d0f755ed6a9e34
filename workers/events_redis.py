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

from workers.redis_urls import redis_client
from workers.settings import Settings


def events_redis(
    settings: Settings,
    *,
    socket_timeout: float = 5.0,
    socket_connect_timeout: float = 2.0,
    health_check_interval: int = 0,
) -> redis.Redis:
    """A client (with its own connection pool) on the event bus's Redis."""
    return redis_client(
        settings.events_url,
        socket_timeout=socket_timeout,
        socket_connect_timeout=socket_connect_timeout,
        health_check_interval=health_check_interval,
    )
