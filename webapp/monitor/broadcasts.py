"""Celery's remote inspect and control: every broadcast of the web process goes here.

An inspect broadcast waits for its timeout unless it knows how many replies
to expect; aiming it at the online workers (from their heartbeats) lets it
return as soon as they have all answered. Broadcasts that wait for replies
run one at a time (concurrent ones share one reply queue and steal replies),
and an inspection's result is reused for `CACHE_SECONDS`, so a burst of
requests costs one round of broadcasts.

Each broadcast publishes on one connection taken from the app's pool with a
bounded wait (`webapp.broker_pool`). Celery's own `control` would take a
second one from kombu's producer pool while holding the first, unbounded:
ten concurrent inspections deadlocked the pool and, with it, every later
submission of the process.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

from celery import Celery
from celery.app.control import Control

from webapp.broker_pool import BrokerBusy, broker_connection
from webapp.errors import ApiError
from webapp.monitor.worker_status import list_workers
from webapp.services import Services

TIMEOUT = 2.0  # an inspection: every online worker is asked, most answer in milliseconds
# A control names its worker and returns at its reply; a busy worker gets longer.
CONTROL_TIMEOUT = 5.0
CACHE_SECONDS = 1.0
METHODS = (
    "stats",
    "active_queues",
    "registered",
    "scheduled",
    "active",
    "reserved",
    "revoked",
    "conf",
)
# Without a worker named, Flower inspects no task lists (scheduled, active, reserved,
# revoked): they can be huge. So does `GET /api/workers`.
LIST_METHODS = ("stats", "active_queues", "registered", "conf")
# Long enough to wait behind one full inspection of unresponsive workers.
REPLIES_WAIT = TIMEOUT * len(METHODS) + 2.0

_replies_lock = threading.Lock()  # gevent's lock under gunicorn's gevent workers
_cache: dict[tuple[tuple[str, ...], tuple[str, ...]], tuple[float, dict[str, Any]]] = {}


@cache
def _control_of(celery: Celery) -> Control:
    return Control(celery)


def _control(celery: Celery) -> Control:
    """A Control of its own whose mailbox publishes on the broadcast's connection.

    Set on every use: Celery resets it to the producer pool after a fork."""
    control = _control_of(celery)
    control.mailbox.producer_pool = None
    return control


@contextmanager
def _one_at_a_time(timeout: float) -> Iterator[None]:
    if not _replies_lock.acquire(timeout=timeout):
        raise ApiError(503, "busy", f"other broadcasts held the line for {timeout:g} s; try again")
    try:
        yield
    finally:
        _replies_lock.release()


def _broadcast(
    svc: Services,
    command: str,
    *,
    arguments: dict[str, Any] | None = None,
    destination: list[str] | None = None,
    reply: bool = False,
    limit: int | None = None,
    timeout: float = TIMEOUT,
) -> list[dict[str, Any]]:
    with broker_connection(svc.celery) as conn:
        replies = _control(svc.celery).broadcast(
            command,
            arguments=arguments or {},
            destination=destination,
            connection=conn,
            reply=reply,
            timeout=timeout,
            limit=limit,
        )
    return list(replies or [])


def known_host(svc: Services, host: str) -> None:
    if host not in {w["hostname"] for w in list_workers(svc)}:
        raise ApiError(404, "unknown_worker", f"Unknown worker '{host}'")


def _one(svc: Services, method: str, hosts: list[str]) -> dict[str, Any]:
    """{host: reply} of one inspect method."""
    try:
        replies = _broadcast(svc, method, destination=hosts, reply=True, limit=len(hosts))
    except BrokerBusy:
        raise
    except Exception:  # a broker hiccup: that part is just missing
        return {}
    return {host: value for reply in replies for host, value in reply.items()}


def _without_alternates(stats: Any) -> Any:
    """`stats` without `broker.alternates` (the failover broker URLs, which may hold
    passwords): Flower drops it too."""
    if not isinstance(stats, dict):
        return stats
    broker = (stats.get("consumer") or stats).get("broker")
    if isinstance(broker, dict):
        broker.pop("alternates", None)
    return stats


def inspect_workers(
    svc: Services, hosts: list[str], methods: tuple[str, ...] = METHODS
) -> dict[str, dict[str, Any]]:
    """{host: {method: reply}} for every method (at most `CACHE_SECONDS` old)."""
    if not hosts:
        return {}
    key = (tuple(sorted(hosts)), methods)
    with _one_at_a_time(REPLIES_WAIT):
        now = time.monotonic()
        hit = _cache.get(key)
        if hit is not None and now - hit[0] <= CACHE_SECONDS:
            return {h: dict(v) for h, v in hit[1].items()}
        out: dict[str, dict[str, Any]] = {h: {} for h in hosts}
        for method in methods:
            for host, value in _one(svc, method, hosts).items():
                if method == "stats":
                    value = _without_alternates(value)
                out.setdefault(host, {})[method] = value
        for stale in [k for k, (t, _) in _cache.items() if now - t > CACHE_SECONDS]:
            del _cache[stale]
        _cache[key] = (time.monotonic(), out)
    return {h: dict(v) for h, v in out.items()}


def control(
    svc: Services, command: str, host: str | None, arguments: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Broadcast a control command and return the named worker's reply ({"ok"} or {"error"})."""
    destination = [host] if host else None
    with _one_at_a_time(REPLIES_WAIT):
        replies = _broadcast(
            svc,
            command,
            arguments=arguments,
            destination=destination,
            reply=True,
            limit=1 if host else None,
            timeout=CONTROL_TIMEOUT,
        )
    for reply in replies:
        if host is None:
            return next(iter(reply.values()), {})
        if host in reply:
            return reply[host] or {}
    return {"error": "no reply from the worker"}


def revoke_task(
    svc: Services, task_id: str, *, terminate: bool = False, signal: str = "SIGTERM"
) -> None:
    """Revoke a task on every worker (no reply awaited)."""
    arguments = {"task_id": task_id, "terminate": terminate, "signal": signal}
    _broadcast(svc, "revoke", arguments=arguments)


def shutdown_worker(svc: Services, host: str) -> None:
    """Ask one worker for a warm shutdown (no reply awaited)."""
    _broadcast(svc, "shutdown", destination=[host])
