"""The hub: one Redis subscription per web process, fanned out to every client.

A job subscription is first *buffering*: live events for it are held while
the replay (log or SQL) is read, then both are merged by seq, so a client
gets every event exactly once and in order, even those published during the
replay. A gap in the live stream (a lost pub/sub message, a reconnect) sends
the subscription back to buffering and fills the gap the same way.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable

import redis
from sqlalchemy.orm import sessionmaker

from webapp.clients import Client, JobSub
from webapp.owners import JobOwners
from webapp.replay import events_since
from webapp.services import text
from workers.envelope import read_head
from workers.settings import Settings

log = logging.getLogger("agentdeck.hub")

JOBS_TOPIC = "jobs"
WORKERS_TOPIC = "workers"
JOB_TOPIC_PREFIX = "job:"


class Hub:
    def __init__(self, settings: Settings, client: redis.Redis, sessions: sessionmaker) -> None:
        self.settings = settings
        self.keys = settings.keys
        self.redis = client
        self.sessions = sessions
        self.owners = JobOwners(sessions)
        self.lock = threading.Lock()
        self.clients: set[Client] = set()
        self.by_job: dict[str, set[Client]] = {}
        self.by_topic: dict[str, set[Client]] = {JOBS_TOPIC: set(), WORKERS_TOPIC: set()}
        self.connected = False
        self.instance_id = uuid.uuid4().hex  # names this web process in Redis leases
        self.on_event: Callable[[str], None] | None = None
        self.on_raw: Callable[[str], None] | None = None  # every envelope (latency metric)
        self.delivered = 0
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._pubsub: redis.client.PubSub | None = None

    # -- lifecycle ------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._listen_forever, name="agentdeck-hub", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Say "going away" to every client so they reconnect elsewhere at once."""
        self._stopping = True
        with self.lock:
            clients = list(self.clients)
        for c in clients:
            c.close(1001, "server going away")

    def register(self, client: Client) -> None:
        with self.lock:
            self.clients.add(client)

    def unregister(self, client: Client) -> None:
        with self.lock:
            self.clients.discard(client)
            for topic in list(client.subs):
                self._drop_job_locked(client, topic[len(JOB_TOPIC_PREFIX) :])
            for subs in self.by_topic.values():
                subs.discard(client)

    # -- subscriptions ----------------------------------------------------------
    def subscribe_topic(self, client: Client, topic: str) -> None:
        with self.lock:
            self.by_topic[topic].add(client)
        client.topics.add(topic)
        client.put(json.dumps({"type": "subscribed", "topic": topic}))

    def epoch(self) -> str | None:
        raw = self.redis.get(self.keys.epoch)
        return text(raw) if raw is not None else None

    def subscribe_job(self, client: Client, job: str, since: int, epoch: str | None = None) -> None:
        topic = JOB_TOPIC_PREFIX + job
        if epoch is not None and since > 0:
            try:
                current = self.epoch()
            except redis.RedisError as exc:  # Redis away: nothing to replay from, as in _resync
                log.warning("epoch of %s unknown: %s", job, exc)
                client.put(json.dumps({"type": "reset", "topic": topic}))
                return
            if current is not None and current != epoch:
                # Redis lost its data since the client counted: its seq means nothing now.
                client.put(json.dumps({"type": "reset", "topic": topic, "reason": "epoch"}))
                return
        with client.lock:
            client.subs[topic] = JobSub(last=since)
        with self.lock:
            self.by_job.setdefault(job, set()).add(client)
        self._resync(client, job, announce=True)

    def unsubscribe(self, client: Client, topic: str) -> None:
        if topic.startswith(JOB_TOPIC_PREFIX):
            with self.lock:
                self._drop_job_locked(client, topic[len(JOB_TOPIC_PREFIX) :])
        else:
            with self.lock:
                self.by_topic.get(topic, set()).discard(client)
            client.topics.discard(topic)

    def _drop_job_locked(self, client: Client, job: str) -> None:
        with client.lock:
            client.subs.pop(JOB_TOPIC_PREFIX + job, None)
        subs = self.by_job.get(job)
        if subs is not None:
            subs.discard(client)
            if not subs:
                del self.by_job[job]

    def _resync(self, client: Client, job: str, announce: bool = False) -> None:
        """Read what the client lacks, then merge it with what was buffered meanwhile."""
        topic = JOB_TOPIC_PREFIX + job
        with client.lock:
            sub = client.subs.get(topic)
            if sub is None:
                return
            if sub.pending is None:
                sub.pending = []
            since = sub.last
        try:
            replay = events_since(self.redis, self.sessions, self.keys, job, since)
        except Exception as exc:  # Redis or SQL away: the client must reload later
            log.warning("replay of %s failed: %s", job, exc)
            replay = None
        epoch = self._epoch_or_empty() if announce else ""  # no I/O under the client's lock
        with client.lock:
            sub = client.subs.get(topic)
            if sub is None:
                return
            reset = replay is None or not replay.complete
            if not reset and replay is not None:
                if announce:
                    client.put(
                        json.dumps(
                            {
                                "type": "subscribed",
                                "topic": topic,
                                "head": replay.head,
                                "epoch": epoch,
                            }
                        )
                    )
                pending = sorted(sub.pending or [])
                sub.pending = None
                client.deliver_locked(topic, sub, replay.items)
                if not client.deliver_locked(topic, sub, pending):
                    sub.pending = []  # still a hole: go round again
                    self._spawn_resync(client, job)
        if reset:
            self.unsubscribe(client, topic)
            client.put(json.dumps({"type": "reset", "topic": topic}))

    def _epoch_or_empty(self) -> str:
        try:
            return self.epoch() or ""
        except Exception:
            return ""

    def _spawn_resync(self, client: Client, job: str) -> None:
        threading.Thread(target=self._resync, args=(client, job), daemon=True).start()

    # -- the one subscription ---------------------------------------------------
    def _listen_forever(self) -> None:
        backoff = 0.1
        first = True
        while not self._stopping:
            try:
                pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(self.keys.events_channel, self.keys.workers_channel)
                self._pubsub = pubsub
                self.connected = True
                backoff = 0.1
                if not first:
                    self._resync_all()  # events published while we were away
                first = False
                while not self._stopping:
                    msg = pubsub.get_message(timeout=1.0)
                    if msg is not None:
                        self._dispatch(msg["channel"], msg["data"])
            except Exception as exc:
                self.connected = False
                log.warning("pub/sub connection lost (%s); resubscribing in %.1fs", exc, backoff)
                time.sleep(backoff)
                backoff = min(backoff * 2, 2.0)

    def _resync_all(self) -> None:
        with self.lock:
            pairs = [(c, job) for job, cs in self.by_job.items() for c in cs]
        for client, job in pairs:
            self._spawn_resync(client, job)

    def _dispatch(self, channel: bytes | str, data: bytes | str) -> None:
        raw = data.decode() if isinstance(data, bytes) else data
        chan = channel.decode() if isinstance(channel, bytes) else channel
        if chan == self.keys.workers_channel:
            self._fanout(WORKERS_TOPIC, [raw])
            return
        # One message carries a publish call's envelopes, one per line.
        lifecycle: list[tuple[str, str]] = []
        for envelope in raw.split("\n"):
            job = self._dispatch_one(envelope)
            if job is not None:
                lifecycle.append((job, envelope))
        if lifecycle:
            self._fanout_jobs(lifecycle)

    def _dispatch_one(self, raw: str) -> str | None:
        """Deliver one envelope to its job's subscribers; its job for a lifecycle event."""
        try:
            job, seq, type_ = read_head(raw)
        except (ValueError, KeyError, TypeError):
            log.error("dropping a malformed envelope: %.200s", raw)
            return None
        topic = JOB_TOPIC_PREFIX + job
        with self.lock:
            clients = list(self.by_job.get(job, ()))
        for client in clients:
            with client.lock:
                sub = client.subs.get(topic)
                if sub is None:
                    continue
                if sub.pending is not None:
                    sub.pending.append((seq, raw))
                    continue
                if not client.deliver_locked(topic, sub, [(seq, raw)]):
                    sub.pending = [(seq, raw)]
                    self._spawn_resync(client, job)
        self.delivered += len(clients)
        if self.on_event is not None:
            self.on_event(job)
        if self.on_raw is not None:
            self.on_raw(raw)
        return job if type_.startswith("job.") else None

    def _fanout_jobs(self, events: list[tuple[str, str]]) -> None:
        """The `jobs` topic: everything to those who see all, their own jobs to the rest."""
        with self.lock:
            clients = list(self.by_topic[JOBS_TOPIC])
        everything = [raw for _, raw in events]
        restricted = [c for c in clients if c.principal is not None and not c.principal.sees_all]
        owners = self.owners.of(job for job, _ in events) if restricted else {}
        for client in clients:
            who = client.principal
            if who is None:
                continue
            if who.sees_all:
                client.put_events(JOBS_TOPIC, everything)
                continue
            mine = [raw for job, raw in events if owners.get(job) == who.user_id]
            if mine:
                client.put_events(JOBS_TOPIC, mine)

    def close_where(self, should_close: Callable[[Client], bool], code: int, reason: str) -> int:
        """Close every client for which `should_close` is true; how many were."""
        with self.lock:
            doomed = [c for c in self.clients if should_close(c)]
        for client in doomed:
            client.close(code, reason)
        return len(doomed)

    def _fanout(self, topic: str, raws: list[str]) -> None:
        with self.lock:
            clients = list(self.by_topic[topic])
        for client in clients:
            client.put_events(topic, raws)
