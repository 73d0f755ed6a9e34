"""Jobs of a worker that died without a word: `job.lost`, then requeue or fail.

A worker that stops heartbeating for `worker_expiry_seconds` is dead. Its
unfinished jobs' messages sit in the broker's `unacked` hash (acks late), where
Celery would leave them until the visibility timeout (an hour). Instead the
janitor, within a tick, says `job.lost` and, per the agent's `on_lost` policy
and its redeliveries cap, either puts the message back at the head of its
queue or fails the job and drops the message.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from sqlalchemy import select

from webapp.services import Services, text
from workers.durable.store import not_suspended
from workers.events import EventType, JobState
from workers.hooks import Hook
from workers.models import Job
from workers.publisher import get_publisher
from workers.redis_urls import is_redis
from workers.runtime import REGISTRY

log = logging.getLogger("agentdeck.lost")

OPEN_ON_A_WORKER = (
    JobState.RECEIVED.value,
    JobState.STARTED.value,
    JobState.WAITING.value,
    JobState.RETRY.value,
)
DEFAULT_CAP = 3
VANISHED_AFTER = 30.0  # seconds a job on a worker with no heartbeat record stays quiet


class LostWorkers(Hook):
    """The janitor's ticks look for dead workers; its scans for jobs on vanished ones."""

    def __init__(self, svc: Services) -> None:
        self.svc = svc

    def every_tick(self) -> None:
        # Just back from an outage of its own (Redis restarted or failed over): the
        # workers' beats stopped too and resume within their interval; wait that long.
        janitor = self.svc.janitor
        back_for = time.monotonic() - (janitor.back_at if janitor is not None else 0.0)
        if back_for < self.svc.settings.worker_expiry_seconds:
            return
        check_lost_workers(self.svc)

    def every_scan(self) -> None:
        check_vanished_workers(self.svc)


def check_lost_workers(svc: Services) -> int:
    """Handle every worker whose heartbeats stopped; returns how many jobs were lost."""
    keys = svc.settings.keys
    seconds, micros = svc.redis.time()
    cutoff = seconds + micros / 1e6 - svc.settings.worker_expiry_seconds
    dead: list[tuple[bytes, float]] = svc.redis.zrangebyscore(  # type: ignore[assignment]
        keys.worker_beats, "-inf", cutoff, withscores=True
    )
    lost = 0
    for raw_host, last_beat in dead:
        host = text(raw_host)
        if svc.redis.hexists(keys.workers_offline, host):
            continue  # said goodbye: a warm shutdown finishes or hands back its jobs
        # One claim per (worker, last beat): a worker of the same name that comes
        # back and dies again is handled again.
        claim = svc.redis.set(keys.lost_claim(host), repr(last_beat), nx=False, get=True)
        if claim is not None and text(claim) == repr(last_beat):
            continue
        lost += handle_lost_worker(svc, host)
    return lost


def check_vanished_workers(svc: Services, quiet_for: float = VANISHED_AFTER) -> int:
    """Jobs open on a worker Redis has no heartbeat of at all (Redis lost its data and
    the worker died with it): once the job has been quiet a while, it is lost too."""
    cutoff = time.time() - quiet_for
    with svc.sessions() as s:
        hosts = s.scalars(
            select(Job.worker)
            .where(
                Job.state.in_(OPEN_ON_A_WORKER),
                Job.updated_at < cutoff,
                Job.worker.is_not(None),
                not_suspended(),
            )
            .distinct()
        ).all()
    lost = 0
    for host in hosts:
        if host and svc.redis.zscore(svc.settings.keys.worker_beats, host) is None:
            lost += handle_lost_worker(svc, host)
    return lost


def handle_lost_worker(svc: Services, host: str) -> int:
    with svc.sessions() as s:
        jobs = s.execute(
            select(Job.id, Job.agent, Job.last_seq, Job.state).where(
                Job.worker == host, Job.state.in_(OPEN_ON_A_WORKER), not_suspended()
            )
        ).all()
    if not jobs:
        return 0
    wanted = {job_id: agent for job_id, agent, _, _ in jobs}
    for job_id, _, last_seq, state in jobs:  # seq goes on from SQL if Redis lost it
        get_publisher().remember(job_id, last_seq, state)
    log.warning("worker %s is gone; %d unfinished job(s)", host, len(wanted))
    if not is_redis(str(svc.celery.conf.broker_url or "")):
        for job_id, agent in wanted.items():
            _say_lost(svc, job_id, agent, host)
        return len(wanted)
    with svc.celery.connection_for_write() as conn:
        channel: Any = conn.default_channel
        tags = _unacked_tags(svc, channel, set(wanted))
        for job_id, agent in wanted.items():
            _settle(svc, channel, job_id, agent, host, tags.get(job_id))
    return len(wanted)


def _unacked_tags(svc: Services, channel: Any, job_ids: set[str]) -> dict[str, str]:
    """delivery tag of each wanted job's message in the broker's unacked hash (on the
    broker's Redis, which need not be the event bus's: the channel's own client)."""
    found: dict[str, str] = {}
    with channel.conn_or_acquire() as broker:
        unacked = list(broker.hscan_iter(channel.unacked_key))
    for tag, raw in unacked:
        try:
            message = json.loads(raw)[0]
            task_id = message["headers"]["id"]
        except (ValueError, KeyError, IndexError, TypeError):
            continue
        if task_id in job_ids:
            found[task_id] = tag.decode()
    return found


def _count_loss(svc: Services, job_id: str, agent: str | None) -> tuple[str, int, int]:
    """The agent's `on_lost` policy, its redelivery cap, and this loss's number."""
    spec = REGISTRY.get(agent) if agent else None
    keys = svc.settings.keys
    restores = int(svc.redis.incr(keys.restores(job_id)))
    svc.redis.expire(keys.restores(job_id), svc.settings.replay_ttl_seconds)
    if spec is None:
        return "requeue", DEFAULT_CAP, restores
    return spec.on_lost, spec.max_redeliveries, restores


def _say_lost(svc: Services, job_id: str, agent: str | None, host: str) -> None:
    """`job.lost` of a job whose message the broker (RabbitMQ) requeued by itself."""
    policy, cap, restores = _count_loss(svc, job_id, agent)
    keys = svc.settings.keys
    requeue = policy == "requeue" and restores <= cap
    get_publisher().emit(
        job_id,
        EventType.JOB_LOST,
        {
            "error": f"WorkerLostError: worker {host} stopped heartbeating",
            "worker": host,
            "requeued": requeue,
            "runs": restores,
        },
        state=JobState.PENDING.value,  # the broker has the message: it runs again, or fails
        wait=True,
    )
    svc.redis.set(keys.lost_reported(job_id), "1", ex=svc.settings.replay_ttl_seconds)


def _settle(
    svc: Services, channel: Any, job_id: str, agent: str | None, host: str, tag: str | None
) -> None:
    policy, cap, restores = _count_loss(svc, job_id, agent)
    keys = svc.settings.keys
    publisher = get_publisher()
    reason = f"WorkerLostError: worker {host} stopped heartbeating"
    requeue = tag is not None and policy == "requeue" and restores <= cap
    publisher.emit(
        job_id,
        EventType.JOB_LOST,
        {"error": reason, "worker": host, "requeued": requeue, "runs": restores},
        state=JobState.PENDING.value if requeue else None,
        wait=True,
    )
    svc.redis.set(keys.lost_reported(job_id), "1", ex=svc.settings.replay_ttl_seconds)
    if requeue:
        channel.qos.restore_by_tag(tag, leftmost=True)
        return
    if tag is not None:  # never to run again
        with channel.conn_or_acquire() as broker:
            pipe = broker.pipeline()
            pipe.hdel(channel.unacked_key, tag)
            pipe.zrem(channel.unacked_index_key, tag)
            pipe.execute()
    why = (
        "the message was gone"
        if tag is None
        else "policy: fail"
        if policy == "fail"
        else f"lost its worker {restores} times; giving up"
    )
    publisher.emit(
        job_id, EventType.JOB_FAILED, {"error": f"{reason} ({why})", "traceback": ""}, wait=True
    )
