"""Which queues a job may be sent to: an allowlist, and a strict name pattern.

With kombu's Redis transport a queue name is a Redis key. A free-form name
could write into Agentdeck's own keys (`agentdeck:dirty`) or kombu's, or pile
messages nobody consumes into a Redis that must not evict. Allowed are the
queues configured in `AGENTDECK_QUEUES` or, when none are, Celery's default
queue plus the queues known workers consume (from their heartbeats); and
only names that fit `NAME` and are not reserved.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import redis

from webapp.errors import ApiError
from webapp.monitor.worker_status import list_workers
from webapp.services import Services

log = logging.getLogger("agentdeck.queues")

RECHECK_AFTER = 0.25  # s: a "no" from a listing of the workers older than this is checked again
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
# Keys kombu's Redis transport and Celery's Redis result backend use themselves.
RESERVED_PREFIXES = ("unacked", "_kombu", "celery-task-meta-", "celery-taskset-meta-")


def well_formed(svc: Services, name: str) -> bool:
    """A plain name, not under Agentdeck's key prefix nor one of kombu's or Celery's keys."""
    return (
        NAME.fullmatch(name) is not None
        and not name.startswith(svc.settings.key_prefix)
        and not name.startswith(RESERVED_PREFIXES)
    )


def allowed_queues(svc: Services, max_age: float = 0.0) -> list[str]:
    """The queues jobs may go to; the workers' as listed at most `max_age` s ago."""
    if svc.settings.queues:
        names = set(svc.settings.queues)
    else:
        names = {str(svc.celery.conf.task_default_queue)}
        workers = svc.workers_seen.get(max_age) if max_age > 0 else list_workers(svc)
        for worker in workers:
            names.update(str(q) for q in worker["info"].get("queues") or [])
    return sorted(n for n in names if well_formed(svc, n))


def check_queue(svc: Services, name: object, field: str = "queue") -> str:
    """`name` if jobs may be sent to it, else a 422 naming `field` and the allowed queues.
    A recent listing of the workers says yes; a no is checked against a fresh one."""
    if isinstance(name, str) and name in allowed_queues(svc, svc.workers_seen.max_age):
        return name
    allowed = allowed_queues(svc, RECHECK_AFTER)
    if isinstance(name, str) and name in allowed:
        return name
    listed = ", ".join(allowed) or "(none)"
    raise ApiError(
        422,
        "invalid_input",
        f'"{field}" must be one of the allowed queues: {listed}',
        field=field,
        allowed=allowed,
    )


def check_queue_name(svc: Services, name: str, field: str = "queue") -> str:
    """`name` if it is well formed (for a queue a worker is asked to consume)."""
    if well_formed(svc, name):
        return name
    raise ApiError(
        422,
        "invalid_input",
        f'"{field}" must be a plain queue name ({NAME.pattern}), not a reserved one',
        field=field,
    )


def queue_warnings(svc: Services, queue: str | None) -> list[dict[str, Any]]:
    """What a client should know about the queue a job was just sent to: a
    `no_worker` warning when no online worker consumes it (the job waits there
    until one does). Empty when Redis cannot say (the job was sent anyway)."""
    name = queue or str(svc.celery.conf.task_default_queue)
    try:
        if _consumed(svc.workers_seen.get(), name):
            return []
        if _consumed(svc.workers_seen.get(RECHECK_AFTER), name):  # a no: look again
            return []
    except redis.RedisError as exc:
        log.info("no queue warning for %s: %s", name, exc)
        return []
    return [
        {
            "code": "no_worker",
            "queue": name,
            "message": f"no online worker consumes queue {name!r}: the job waits there "
            "until a worker that consumes it starts",
        }
    ]


def _consumed(workers: list[dict[str, Any]], name: str) -> bool:
    return any(w["online"] and name in (w["info"].get("queues") or []) for w in workers)
