"""The hub: one Redis subscription per web process, fanned out to every client.

The hub routes: each job event goes to the `JobSubscription`s of the clients
subscribed to its job (`subscription.py` owns buffering, replay merging and
gaps), lifecycle events to the `jobs` topic, presence to `workers`. It starts
the replays a subscription asks for, on a thread of their own, and calls the
app's `on_envelope` hooks for every event. Its listener is a `Loop`: a lost
pub/sub connection is counted, backed off and resubscribed, and then every
subscription replays what it may have missed meanwhile.
"""

from __future__ import annotations

import bisect
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import redis
from sqlalchemy.orm import sessionmaker

from webapp.clients import CLOSE_GOING_AWAY, Client, events_bytes
from webapp.coalesce import JOBS_LATEST_TOPIC, Coalescer
from webapp.loops import Loop
from webapp.owners import JobOwners
from webapp.replay import Item, Replay, events_since
from webapp.services import text
from webapp.subscription import JobSubscription
from workers.envelope import read_head
from workers.events import LIFECYCLE_PREFIX
from workers.hooks import Hooks
from workers.redis_urls import primary_moved
from workers.settings import Settings

log = logging.getLogger("agentdeck.hub")

JOBS_TOPIC = "jobs"
WORKERS_TOPIC = "workers"
JOB_TOPIC_PREFIX = "job:"
PRIMARY_CHECK_EVERY = 1.0  # seconds between asking the Sentinels where the primary is
# Seconds from a pub/sub message (or a burst of several) in to its frames written to
# every client that could take them at once (one whose socket is full gets them from
# its own flusher later).
FANOUT_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
# Messages already waiting on the pub/sub connection are dispatched together, each
# topic's events in one frame per client: a burst costs one send() per client, not one
# per event. Bounded so a frame stays small and the first of a burst is not held long.
BURST_MESSAGES = 256
BURST_CHARS = 128 * 1024
# Replays reading Redis at once: a burst of subscribes (a thousand watchers at a page
# load) holds at most this many of the web's Redis connections (AGENTDECK_REDIS_CONNECTIONS)
# and waits here for the rest, leaving the pool to requests, the recorder and the listener.
REPLAY_CONCURRENCY = 32


class FanoutTimes:
    """Histograms of the hub's fan-out per message: wall time, and the CPU time of it
    (the wall time less what other processes took of the core meanwhile)."""

    def __init__(self) -> None:
        self.wall = [0] * (len(FANOUT_BUCKETS) + 1)  # the last one: +Inf
        self.cpu = [0] * (len(FANOUT_BUCKETS) + 1)
        self.wall_sum = 0.0
        self.cpu_sum = 0.0

    def observe(self, wall: float, cpu: float) -> None:
        self.wall[bisect.bisect_left(FANOUT_BUCKETS, wall)] += 1
        self.cpu[bisect.bisect_left(FANOUT_BUCKETS, cpu)] += 1
        self.wall_sum += wall
        self.cpu_sum += cpu


class Hub(Loop):
    def __init__(
        self,
        settings: Settings,
        client: redis.Redis,
        sessions: sessionmaker,
        hooks: Hooks | None = None,
    ) -> None:
        super().__init__("hub", every=0, backoff=0.1, backoff_cap=2.0)
        self.settings = settings
        self.keys = settings.keys
        self.redis = client
        self.sessions = sessions
        self.hooks = hooks or Hooks()
        self.owners = JobOwners(sessions)
        self.lock = threading.Lock()
        self.clients: set[Client] = set()
        self.by_job: dict[str, set[Client]] = {}
        self.by_topic: dict[str, set[Client]] = {JOBS_TOPIC: set(), WORKERS_TOPIC: set()}
        # `jobs:latest` (webapp/coalesce.py): its own loop, fed from _dispatch_burst.
        self.by_topic[JOBS_LATEST_TOPIC] = set()
        self.latest = Coalescer(lambda: self.subscribers(JOBS_LATEST_TOPIC), self.owners.of)
        # Of `jobs`' subscribers, those who see only their own jobs (the rest see all and
        # share one frame). A socket's principal is set before it subscribes, for good.
        self.jobs_restricted: set[Client] = set()
        self.connected = False
        self.instance_id = uuid.uuid4().hex  # names this web process in Redis leases
        self.delivered = 0  # job events handed to a client's subscription, live
        self.fanout = FanoutTimes()
        self._subscribed_before = False
        self._replaying = threading.BoundedSemaphore(REPLAY_CONCURRENCY)

    # -- lifecycle ------------------------------------------------------------
    def stop(self, timeout: float | None = None) -> bool:
        """Stop listening; say "going away" to every client so they reconnect elsewhere."""
        super().stop()  # the listener notices within a second
        with self.lock:
            clients = list(self.clients)
        for c in clients:
            c.close(CLOSE_GOING_AWAY, "server going away")
        return super().stop(timeout)

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
            self.jobs_restricted.discard(client)

    # -- subscriptions ----------------------------------------------------------
    def subscribe_topic(self, client: Client, topic: str) -> None:
        who = client.principal
        with self.lock:
            if topic == JOBS_TOPIC and who is not None and not who.sees_all:
                self.jobs_restricted.add(client)
            else:
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
                with self._replaying:  # a reconnect storm asks this of Redis at once too
                    current = self.epoch()
            except redis.RedisError as exc:  # Redis away: nothing to replay from, as in _replay
                log.warning("epoch of %s unknown: %s", job, exc)
                client.put(json.dumps({"type": "reset", "topic": topic}))
                return
            if current is not None and current != epoch:
                # Redis lost its data since the client counted: its seq means nothing now.
                client.put(json.dumps({"type": "reset", "topic": topic, "reason": "epoch"}))
                return
        sub = JobSubscription(topic, since, client)  # buffering until its replay is in
        client.add_sub(sub)
        with self.lock:
            self.by_job.setdefault(job, set()).add(client)
        self._replay(client, job, sub, announce=True)

    def unsubscribe(self, client: Client, topic: str) -> None:
        if topic.startswith(JOB_TOPIC_PREFIX):
            with self.lock:
                self._drop_job_locked(client, topic[len(JOB_TOPIC_PREFIX) :])
        else:
            with self.lock:
                self.by_topic.get(topic, set()).discard(client)
                if topic == JOBS_TOPIC:
                    self.jobs_restricted.discard(client)
            client.topics.discard(topic)

    def _drop_job_locked(
        self, client: Client, job: str, sub: JobSubscription | None = None
    ) -> None:
        """Unsubscribe `client` from `job` (only from `sub`, when given: not a newer one)."""
        topic = JOB_TOPIC_PREFIX + job
        client.drop_sub(topic, sub)
        if topic in client.subs:
            return  # subscribed anew meanwhile
        subs = self.by_job.get(job)
        if subs is not None:
            subs.discard(client)
            if not subs:
                del self.by_job[job]

    def _replay(
        self, client: Client, job: str, sub: JobSubscription, announce: bool = False
    ) -> None:
        """Read what the subscription lacks and hand it over; a reset if nothing can fill
        the gap (Redis or SQL away, the history gone)."""
        since = sub.begin_replay()
        if since is None:
            return  # unsubscribed meanwhile
        replay: Replay | None
        epoch = ""
        with self._replaying:
            try:
                replay = events_since(self.redis, self.sessions, self.keys, job, since)
            except Exception as exc:  # Redis or SQL away: the client must reload later
                log.warning("replay of %s failed: %s", job, exc)
                replay = None
            if announce and replay is not None:
                epoch = self._epoch_or_empty()
        if replay is None or not replay.complete:
            if sub.close():  # still subscribed until now: it must reload
                with self.lock:
                    self._drop_job_locked(client, job, sub)
                client.put(json.dumps({"type": "reset", "topic": sub.topic}))
            return
        frame = None
        if announce:
            frame = json.dumps(
                {"type": "subscribed", "topic": sub.topic, "head": replay.head, "epoch": epoch}
            )
        if sub.finish_replay(replay.items, frame):
            self._spawn_replay(client, job, sub)  # still a hole: go round again

    def _epoch_or_empty(self) -> str:
        try:
            return self.epoch() or ""
        except Exception:
            return ""

    def _spawn_replay(self, client: Client, job: str, sub: JobSubscription) -> None:
        threading.Thread(target=self._replay, args=(client, job, sub), daemon=True).start()

    # -- the one subscription ---------------------------------------------------
    def tick(self) -> float | None:
        """Subscribe and listen until the connection fails (raises) or the hub stops."""
        pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        try:
            pubsub.subscribe(self.keys.events_channel, self.keys.workers_channel)
            self.connected = True
            self.healthy()
            if self._subscribed_before:
                self._replay_all()  # events published while we were away
                self.latest.reset()
            self._subscribed_before = True
            check_at = time.monotonic() + PRIMARY_CHECK_EVERY
            while not self.stopping:
                msg = pubsub.get_message(timeout=1.0)
                if msg is not None:
                    self._dispatch_burst(self._burst(pubsub, msg))
                    # Under a flood the next message is already buffered and reading it
                    # never waits: yield, or (gevent) nothing else in the process runs,
                    # neither subscribes, flushers and pings nor gunicorn's heartbeat,
                    # whose arbiter then kills the worker (WORKER TIMEOUT, every socket).
                    time.sleep(0)
                if time.monotonic() >= check_at:
                    # Through Sentinel: a primary failed over while it runs on keeps this
                    # subscription, deaf to what is published on the new one.
                    check_at = time.monotonic() + PRIMARY_CHECK_EVERY
                    if primary_moved(self.redis):
                        raise redis.ConnectionError("the Redis primary moved (Sentinel)")
        finally:
            self.connected = False
            try:
                pubsub.close()
            except Exception as exc:  # a dead connection: nothing to close cleanly
                log.debug("closing the lost pub/sub connection: %r", exc)
        return None

    def _replay_all(self) -> None:
        with self.lock:
            pairs = [(c, job) for job, cs in self.by_job.items() for c in cs]
        for client, job in pairs:
            sub = client.subs.get(JOB_TOPIC_PREFIX + job)
            if sub is not None:
                self._spawn_replay(client, job, sub)

    @staticmethod
    def _burst(pubsub: redis.client.PubSub, first: dict[str, Any]) -> list[tuple[str, str]]:
        """`first` and the messages that already wait behind it, as (channel, data)."""
        burst = [(text(first["channel"]), text(first["data"]))]
        size = len(burst[0][1])
        while len(burst) < BURST_MESSAGES and size < BURST_CHARS:
            msg = pubsub.get_message(timeout=0)
            if msg is None:
                break
            burst.append((text(msg["channel"]), text(msg["data"])))
            size += len(burst[-1][1])
        return burst

    def _dispatch_burst(self, burst: list[tuple[str, str]]) -> None:
        started, started_cpu = time.perf_counter(), time.thread_time()
        by_job: dict[str, list[Item]] = {}  # each job's events, in publish order
        lifecycle: list[tuple[str, str]] = []
        presence: list[str] = []
        for channel, data in burst:
            if channel == self.keys.workers_channel:
                presence.append(data)
                continue
            # One message carries a publish call's envelopes, one per line.
            for envelope in data.split("\n"):
                head = self._read(envelope)
                if head is None:
                    continue
                job, seq, type_ = head
                by_job.setdefault(job, []).append((seq, envelope))
                self.latest.offer(seq, type_, envelope)
                self.hooks.on_envelope(envelope, job)
                if type_.startswith(LIFECYCLE_PREFIX):
                    lifecycle.append((job, envelope))
        for job, items in by_job.items():
            self._deliver(job, items)
        if lifecycle:
            self._fanout_jobs(lifecycle)
        if presence:
            self._fanout(WORKERS_TOPIC, presence)
        self.fanout.observe(time.perf_counter() - started, time.thread_time() - started_cpu)

    @staticmethod
    def _read(raw: str) -> tuple[str, int, str] | None:
        try:
            return read_head(raw)
        except (ValueError, KeyError, TypeError):
            log.error("dropping a malformed envelope: %.200s", raw)
            return None

    def _deliver(self, job: str, items: list[Item]) -> None:
        """A job's live events to its subscribers: one frame, the same bytes for all."""
        clients = self.by_job.get(job)
        if not clients:
            return
        topic = JOB_TOPIC_PREFIX + job
        frame = events_bytes(topic, [raw for _, raw in items])
        with self.lock:
            subscribed = list(clients)
        for client in subscribed:
            sub = client.subs.get(topic)
            if sub is not None and sub.offer_live_many(items, frame):
                self._spawn_replay(client, job, sub)  # a gap: fill it from the log
        self.delivered += len(subscribed) * len(items)

    def _fanout_jobs(self, events: list[tuple[str, str]]) -> None:
        """The `jobs` topic: everything to those who see all, their own jobs to the rest."""
        with self.lock:
            everyone = list(self.by_topic[JOBS_TOPIC])
            restricted = list(self.jobs_restricted)
        everything = [raw for _, raw in events]
        if everyone:
            frame = events_bytes(JOBS_TOPIC, everything)  # once, for all who see all
            for client in everyone:
                client.put_events(JOBS_TOPIC, everything, frame)
        if restricted:  # split once per message, not once per client
            by_owner: dict[str | None, list[str]] = {}
            owners = self.owners.of(job for job, _ in events)
            for job, raw in events:
                by_owner.setdefault(owners.get(job), []).append(raw)
            for client in restricted:
                who = client.principal
                if who is not None and (mine := by_owner.get(who.user_id)):
                    client.put_events(JOBS_TOPIC, mine)

    def close_where(self, should_close: Callable[[Client], bool], code: int, reason: str) -> int:
        """Close every client for which `should_close` is true; how many were."""
        with self.lock:
            doomed = [c for c in self.clients if should_close(c)]
        for client in doomed:
            client.close(code, reason)
        return len(doomed)

    def subscribers(self, topic: str) -> list[Client]:
        with self.lock:
            return list(self.by_topic[topic])

    def _fanout(self, topic: str, raws: list[str]) -> None:
        with self.lock:
            clients = list(self.by_topic[topic])
        if clients:
            frame = events_bytes(topic, raws)
            for client in clients:
                client.put_events(topic, raws, frame)
