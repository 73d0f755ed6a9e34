"""The broker's queues: messages ready, unacked, consumers; on Redis or RabbitMQ.

Celery's Redis transport keeps a queue as a list named after it (priority
levels as extra lists `name\\x06\\x16N`) and the messages taken but not yet
acknowledged in the `unacked` hash, as `[message, exchange, routing_key]`.
Consumers come from the workers' heartbeats (the queues each one consumes),
so this page costs no broadcast and is current to a heartbeat.

On RabbitMQ a passive `queue.declare` per queue (AMQP itself, no management
plugin needed) gives the messages ready and the consumers; AMQP does not say
how many a queue's consumers hold unacknowledged, so there "unacked" counts
the queue's jobs open on a worker (SQL): with acks late and a prefetch of 1,
each holds its message unacknowledged.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

import redis
from sqlalchemy import func, select

from webapp.broker_pool import broker_connection
from webapp.services import Services, text
from workers.durable.store import not_suspended
from workers.events import JobState
from workers.models import Job
from workers.redis_urls import is_amqp, is_redis, redis_client, without_query

PRIORITY_SEP = "\x06\x16"
PRIORITIES = range(1, 10)
UNACKED = "unacked"
_clients: dict[str, redis.Redis] = {}


def broker_redis(svc: Services) -> redis.Redis | None:
    """A client on the broker's Redis (None when the broker is not Redis)."""
    url = str(svc.celery.conf.broker_url or "")
    if not is_redis(url):
        return None
    client = _clients.get(url)
    if client is None:
        if url.startswith("sentinel://"):  # the master name is in the transport options
            name = (svc.celery.conf.broker_transport_options or {}).get("master_name")
            url = without_query(url) + (f"?master_name={name}" if name else "")
        client = redis_client(url, socket_timeout=5, socket_connect_timeout=3)
        _clients[str(svc.celery.conf.broker_url)] = client
    return client


def queue_names(svc: Services, workers: list[dict[str, Any]]) -> list[str]:
    conf = svc.celery.conf
    names = {str(conf.task_default_queue or "celery"), *svc.settings.queues}
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


OPEN_ON_A_WORKER = (
    JobState.RECEIVED.value,
    JobState.STARTED.value,
    JobState.WAITING.value,
    JobState.RETRY.value,
)


def amqp_counts(svc: Services, names: list[str]) -> dict[str, tuple[int, int]]:
    """(ready, consumers) of each named queue RabbitMQ has, by a passive declare each."""
    found: dict[str, tuple[int, int]] = {}
    with broker_connection(svc.celery) as conn:
        channel = conn.channel()
        try:
            for name in names:
                try:
                    _, ready, consumers = channel.queue_declare(queue=name, passive=True)
                except conn.channel_errors:  # no such queue: RabbitMQ closed the channel
                    with contextlib.suppress(Exception):
                        channel.close()
                    channel = conn.channel()
                    continue
                found[name] = (int(ready), int(consumers))
        finally:
            with contextlib.suppress(Exception):
                channel.close()
    return found


def open_jobs_by_queue(svc: Services) -> dict[str, int]:
    """Jobs open on a worker (holding their message), by queue."""
    default = str(svc.celery.conf.task_default_queue or "celery")
    with svc.sessions() as s:
        rows = s.execute(
            select(Job.queue, func.count())
            .where(Job.state.in_(OPEN_ON_A_WORKER), not_suspended())
            .group_by(Job.queue)
        ).all()
    counts: dict[str, int] = {}
    for queue, n in rows:
        counts[queue or default] = counts.get(queue or default, 0) + int(n)
    return counts


def queues(svc: Services, workers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per queue: name, messages (ready), unacked, consumers (online workers)."""
    consumers: dict[str, list[str]] = {}
    for w in workers:
        if w["online"]:
            for q in w["info"].get("queues") or []:
                consumers.setdefault(q, []).append(w["hostname"])
    names = queue_names(svc, workers)
    if is_amqp(str(svc.celery.conf.broker_url or "")):
        return amqp_queues(svc, names, consumers)
    client = broker_redis(svc)
    ready = queue_lengths(client, names) if client is not None else {}
    unacked = unacked_by_queue(client) if client is not None else {}
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


def amqp_queues(
    svc: Services, names: list[str], consumers: dict[str, list[str]]
) -> list[dict[str, Any]]:
    counts = amqp_counts(svc, names)
    unacked = open_jobs_by_queue(svc)
    return [
        {
            "name": n,
            "messages": counts.get(n, (0, 0))[0],
            "unacked": unacked.get(n, 0),
            # RabbitMQ's own count: every consumer, the workers' heartbeats aside.
            "consumers": counts[n][1] if n in counts else len(consumers.get(n, [])),
            "workers": sorted(consumers.get(n, [])),
        }
        for n in sorted(names)
    ]
