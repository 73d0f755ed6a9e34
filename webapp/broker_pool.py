"""The web process's use of Celery's broker connection pool: one connection, bounded wait.

Every greenlet of a web process shares the app's pool (`broker_pool_limit`
connections). Two rules keep it from starving:

- a caller takes exactly one connection and does all its work on it: holding
  one while asking the pool for another (what Celery's broadcasts do through
  kombu's producer pool) deadlocks once every connection is held that way;
- the wait for a connection is bounded (`broker_pool_acquire_timeout` in
  celeryconfig.py): a starved pool answers 503, which a client can retry,
  instead of hanging the request and every one after it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from celery import Celery
from celery.result import AsyncResult
from kombu import Connection
from kombu.exceptions import LimitExceeded

from webapp.errors import ApiError

DEFAULT_ACQUIRE_TIMEOUT = 5.0  # when celeryconfig leaves it unset (None: forever)


class BrokerBusy(ApiError):
    """No broker connection came free in time."""

    def __init__(self, waited: float) -> None:
        super().__init__(
            503,
            "broker_busy",
            f"no broker connection came free within {waited:g} s; try again shortly",
        )


def acquire_timeout(celery: Celery) -> float:
    value = celery.conf.broker_pool_acquire_timeout
    return DEFAULT_ACQUIRE_TIMEOUT if value is None else float(value)


@contextmanager
def broker_connection(celery: Celery) -> Iterator[Connection]:
    """One connection from the app's pool, waited for at most `acquire_timeout`."""
    timeout = acquire_timeout(celery)
    try:
        conn = celery.pool.acquire(block=True, timeout=timeout)
    except LimitExceeded:
        raise BrokerBusy(timeout) from None
    try:
        yield conn
    finally:
        conn.release()


def send_task(celery: Celery, name: str, **options: Any) -> AsyncResult:
    """`celery.send_task` on one pooled connection (not through the producer pool,
    whose producers take their connection from the same pool with no time limit)."""
    with broker_connection(celery) as conn:
        return celery.send_task(name, connection=conn, **options)
