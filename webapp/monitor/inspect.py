"""Celery's remote inspect and control, bounded by a timeout and aimed at known workers.

An inspect broadcast waits for its timeout unless it knows how many replies
to expect; aiming it at the online workers (from their heartbeats) lets it
return as soon as they have all answered. The methods are asked one after
the other: concurrent broadcasts share one reply queue and steal replies.
"""

from __future__ import annotations

from typing import Any

from webapp.errors import ApiError
from webapp.monitor.presence import list_workers
from webapp.services import Services

TIMEOUT = 2.0
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


def online_hosts(svc: Services) -> list[str]:
    return [w["hostname"] for w in list_workers(svc) if w["online"]]


def known_host(svc: Services, host: str) -> None:
    if host not in {w["hostname"] for w in list_workers(svc)}:
        raise ApiError(404, "unknown_worker", f"Unknown worker '{host}'")


def _one(svc: Services, method: str, hosts: list[str]) -> tuple[str, dict[str, Any]]:
    insp = svc.celery.control.inspect(timeout=TIMEOUT, destination=hosts, limit=len(hosts))
    try:
        reply = getattr(insp, method)() or {}
    except Exception:  # a broker hiccup: that part is just missing
        reply = {}
    return method, reply


def inspect_workers(
    svc: Services, hosts: list[str], methods: tuple[str, ...] = METHODS
) -> dict[str, dict[str, Any]]:
    """{host: {method: reply}} for every method."""
    out: dict[str, dict[str, Any]] = {h: {} for h in hosts}
    if not hosts:
        return out
    for method in methods:
        _, reply = _one(svc, method, hosts)
        for host, value in reply.items():
            out.setdefault(host, {})[method] = value
    return out


def control(
    svc: Services, command: str, host: str | None, arguments: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Broadcast a control command and return the named worker's reply ({"ok"} or {"error"})."""
    destination = [host] if host else None
    replies = svc.celery.control.broadcast(
        command,
        arguments=arguments or {},
        destination=destination,
        reply=True,
        timeout=TIMEOUT,
        limit=1 if host else None,
    )
    for reply in replies or []:
        if host is None:
            return next(iter(reply.values()), {})
        if host in reply:
            return reply[host] or {}
    return {"error": "no reply from the worker"}
