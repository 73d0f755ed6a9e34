"""The Redis broker's queues: messages ready, unacked, consumers.

Celery's Redis transport keeps a queue as a list named after it (priority
levels as extra lists `name\\x06\\x16N`) and the messages taken but not yet
acknowledged in the `unacked` hash, as `[message, exchange, routing_key]`.
Consumers come from the workers' heartbeats (the queues each one consumes),
so this page costs no broadcast and is current to a heartbeat.
"""

from __future__ import annotations

import json
from typing import Any

import redis

from webapp.services import Services, text

PRIORITY_SEP = "\x06\x16"
PRIORITIES = range(1, 10)
UNACKED = "unacked"
_clients: dict[str, redis.Redis] = {}


def broker_redis(svc: Services) -> redis.Redis | None:
    """A client on the broker's Redis (None when the broker is not Redis)."""
    url = str(svc.celery.conf.broker_url or "")
    if not url.startswith(("redis://", "rediss://", "unix://")):
        return None
    client = _clients.get(url)
    if client is None:
        client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=3)
        _clients[url] = client
    return client


def queue_names(svc: Services, workers: list[dict[str, Any]]) -> list[str]:
    conf = svc.celery.conf
    names = {str(conf.task_default_queue or "celery")}
    for q in conf.task_queues or []:
        if getattr(q, "name", None):
            names.add(q.name)
    for w in workers:
        names.update(w["info"].get("queues") or [])
    return sorted(names)


def queue_lengths(client: redis.Redis, names: list[str]) -> dict[str, int]:
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.llen(name)
        for p in PRIORITIES:
            pipe.llen(f"{name}{PRIORITY_SEP}{p}")
    replies = pipe.execute()
    width = 1 + len(PRIORITIES)
    return {n: int(sum(replies[i * width : (i + 1) * width])) for i, n in enumerate(names)}


def unacked_by_queue(client: redis.Redis) -> dict[str, int]:
    counts: dict[str, int] = {}
    for _tag, raw in client.hscan_iter(UNACKED, count=500):
        try:
            routing_key = json.loads(raw)[2]
        except (ValueError, IndexError, TypeError):
            continue
        name = text(routing_key) if routing_key else "?"
        counts[name] = counts.get(name, 0) + 1
    return counts


def queues(svc: Services, workers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per queue: name, messages (ready), unacked, consumers (online workers)."""
    client = broker_redis(svc)
    names = queue_names(svc, workers)
    ready = queue_lengths(client, names) if client is not None else {}
    unacked = unacked_by_queue(client) if client is not None else {}
    consumers: dict[str, list[str]] = {}
    for w in workers:
        if w["online"]:
            for q in w["info"].get("queues") or []:
                consumers.setdefault(q, []).append(w["hostname"])
    for extra in unacked:
        if extra not in names and extra != "?":
            names.append(extra)
    return [
        {
            "name": n,
            "messages": ready.get(n, 0),
            "unacked": unacked.get(n, 0),
            "consumers": len(consumers.get(n, [])),
            "workers": sorted(consumers.get(n, [])),
        }
        for n in sorted(names)
    ]
