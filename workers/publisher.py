"""Give events their seq and publish them: one Redis round trip per batch.

Each process has one `Publisher` (see `get_publisher`). `emit` only appends
to an in-memory buffer (`emit_plain`, for the task signal receivers, does not
even encode); a background thread drains it, running the publish script
(`publish_script`) on a batch of events in one round trip. The script gives
each event its job's next seq and state, appends it to the job's replay log,
marks the job for the recorder and PUBLISHes the batch, atomically.

Keeping Redis off the caller's path is what keeps the cost to a Celery
worker low, and the buffer is what carries events across a Redis outage. A
buffer that fills (Redis away for long) sheds all but lifecycle events; what
was shed and the failed calls are added to the shared `metrics` hash once
Redis answers again, so /metrics shows them whichever process they were in.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
import uuid
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Any

import redis

from workers import lua
from workers.envelope import write
from workers.events import LIFECYCLE_PREFIX, STATE_AFTER, EventType, now
from workers.events_redis import events_redis
from workers.hooks import HOOKS, Hooks
from workers.lua import RS, SEP
from workers.publish_script import ScriptConnection
from workers.redis_urls import is_sentinel
from workers.settings import Settings, get_settings

log = logging.getLogger("agentdeck.publisher")

_STATE_AFTER = {t.value: s.value for t, s in STATE_AFTER.items()}
BATCH_MAX = 500
# Under load, a batch goes once it holds this many events or its linger is up:
# enough to spread a round trip's fixed cost thin, soon enough at high rates.
BATCH_FULL = 64
# "Under load": lifecycle events of more than this many jobs a second, as from a
# worker draining short tasks. Agents streaming fast change no state while they
# stream, however many they are: their events never wait for a linger.
LOAD_JOBS_PER_S = 50.0
RATE_WINDOW = 0.1
SEEN_MAX = 10_000  # jobs whose last seq and state this process remembers


@dataclass(slots=True)
class _Pending:
    job: str
    packed: str  # head, mid, new_state, tail joined by SEP (see workers/lua/publish.lua)
    is_lifecycle: bool
    done: threading.Event | None = None
    seq: int = 0
    # (type, ts, state, data) of an event the thread packs (see emit_plain): packed
    # is "" until then.
    raw: tuple[str, float, str, dict[str, Any]] | None = None


@dataclass
class PublisherStats:
    published: int = 0
    dropped: int = 0
    redis_errors: int = 0
    last_error: str = ""
    last_error_at: float = 0.0
    # How many of `dropped` and `redis_errors` the metrics hash holds already.
    dropped_reported: int = 0
    errors_reported: int = 0

    @property
    def unreported(self) -> bool:
        return self.dropped > self.dropped_reported or self.redis_errors > self.errors_reported


def _pack_late(item: _Pending) -> None:
    """Pack an event emit left raw; data that will not encode still says the event."""
    assert item.raw is not None
    type_, ts, state, data = item.raw
    try:
        item.packed = _pack(item.job, type_, ts, state, data)
    except Exception as exc:  # a bug in a receiver: say the event all the same
        log.error("event %s of %s: its data did not encode: %r", type_, item.job, exc)
        item.packed = _pack(item.job, type_, ts, state, {"unencodable": repr(exc)[:500]})
    item.raw = None


def _pack(job: str, type_: str, ts: float, state: str, data: dict[str, Any]) -> str:
    """The envelope cut at the seq and around the state the script fills in:
    head, mid, new_state, tail joined by SEP."""
    return write(job, SEP, type_, ts, f"{SEP}{state}{SEP}", data)


class Publisher:
    def __init__(
        self, settings: Settings, client: redis.Redis | None = None, hooks: Hooks | None = None
    ) -> None:
        self.settings = settings
        self.hooks = HOOKS if hooks is None else hooks  # before_publish_batch, per batch
        self.keys = settings.keys
        self.redis = client or events_redis(settings, socket_timeout=5, socket_connect_timeout=2)
        # Through Sentinel, a batch is done once a replica holds it too (a failover
        # promotes a replica): see workers/publish_script.py.
        replicas = 1 if is_sentinel(settings.events_url) else 0
        self._script = ScriptConnection(self.redis, lua.PUBLISH, replicas)
        # Producers append without a lock (deque appends are atomic) and wake the
        # thread only when it sleeps on an empty buffer: under load it wakes by
        # itself every linger, and a task's events cost its thread no lock and no
        # wake-up.
        self._buffer: deque[_Pending] = deque()
        self._cond = threading.Condition()
        self._idle = False  # the thread waits for the buffer to fill: emit must wake it
        self._urgent = False  # someone waits for the buffer: no lingering
        # Under load, gather events this long between round trips.
        self._linger = settings.publish_linger_ms / 1000
        self._epoch_candidate = uuid.uuid4().hex
        # The last call's receipt while its outcome is unknown (it raised): the next call
        # must be serialized with it and start with the same events, as a retry does.
        self._receipt: str | None = None
        self._seen: OrderedDict[str, tuple[int, str]] = OrderedDict()
        self.stats = PublisherStats()
        self._thread = threading.Thread(target=self._run, name="agentdeck-publisher", daemon=True)
        self._thread.start()

    # -- producer side ------------------------------------------------------
    def emit(
        self,
        job: str,
        type_: EventType | str,
        data: dict[str, Any] | None = None,
        *,
        ts: float | None = None,
        state: str | None = None,
        wait: bool = False,
        timeout: float = 5.0,
    ) -> int:
        """Queue one event; with `wait`, block until it is in Redis and return its seq."""
        type_str = str(type_)
        if state is None:
            state = _STATE_AFTER.get(type_str, "")
        if SEP in job or RS in job or SEP in state or RS in state:
            log.error("dropping an event with a separator in its job id or state: %r", job)
            return 0
        is_lifecycle = type_str.startswith(LIFECYCLE_PREFIX)
        buffer = self._buffer
        if len(buffer) >= self.settings.publish_buffer_max and not is_lifecycle:
            # Redis has been away long enough to fill the buffer: keep the
            # lifecycle events (state must converge), shed the chatter.
            self._drop()
            return 0
        item = _Pending(
            job,
            _pack(job, type_str, ts or now(), state, data or {}),
            is_lifecycle,
            threading.Event() if wait else None,
        )
        buffer.append(item)
        if item.done is not None:
            with self._cond:
                self._urgent = True
                self._cond.notify_all()
            item.done.wait(timeout)
        elif self._idle or len(buffer) == BATCH_FULL:
            with self._cond:
                self._cond.notify()
        return item.seq

    def emit_plain(
        self, job: str, type_: str, data: dict[str, Any], ts: float | None = None
    ) -> None:
        """`emit` of a lifecycle event for the task signal receivers, doing least
        in the task's own thread: in a busy pool process, code that runs once per
        task runs with cold caches, so the publisher's thread encodes the batch in
        one go instead. Only for data nothing will change later: fresh dicts of
        plain values."""
        if SEP in job or RS in job:
            log.error("dropping an event with a separator in its job id: %r", job)
            return
        buffer = self._buffer
        buffer.append(_Pending(job, "", True, raw=(type_, ts or now(), _STATE_AFTER[type_], data)))
        if self._idle or len(buffer) == BATCH_FULL:
            with self._cond:
                self._cond.notify()

    def _drop(self) -> None:
        stats = self.stats
        if stats.dropped == stats.dropped_reported:  # the first since the last report
            log.warning(
                "publish buffer full (%d events, Redis away?): dropping all but lifecycle events",
                len(self._buffer),
            )
        stats.dropped += 1

    def remember(self, job: str, last_seq: int, state: str) -> None:
        """Seed what this process knows of a job it has not published for (from SQL), so
        that if Redis lost its data the job's seq still goes on from there."""
        with self._cond:
            seen = self._seen.get(job)
            if seen is None or seen[0] < last_seq:
                self._seen[job] = (last_seq, state)

    def flush(self, timeout: float = 5.0) -> bool:
        """Block until everything emitted so far is in Redis (or the timeout)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            if self._buffer:
                self._urgent = True
                self._cond.notify_all()
            while self._buffer:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
        return True

    # -- the draining thread ------------------------------------------------
    def _next_batch(self, last: float, under_load: bool) -> list[_Pending]:
        """Wait for events (and, under load, until the linger after the last round trip)."""
        with self._cond:
            # Under load, one round trip per linger or per full batch: a wake-up and
            # a round trip per event cost a busy worker far more. The thread
            # sleeps it out without being idle, so no emit meanwhile pays for a
            # notify (a lock and a thread switch in the task's own thread); only a
            # full batch, a waiting emit or a flush (urgent) cut it short.
            # Otherwise (an agent's stream), events go at once.
            while under_load and not self._urgent and len(self._buffer) < BATCH_FULL:
                left = last + self._linger - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            # Idle is set before the buffer is looked at: an emit that appends after
            # the look sees it and wakes us (its notify waits for our wait()).
            self._idle = True
            while not self._buffer:
                self._cond.wait()
            self._idle = False
            self._urgent = False
            return list(itertools.islice(self._buffer, BATCH_MAX))

    def _run(self) -> None:
        backoff = 0.05
        last = 0.0
        jobs_rate, window_start = 0.0, time.monotonic()
        window_jobs: set[str] = set()
        while True:
            batch = self._next_batch(last, jobs_rate > LOAD_JOBS_PER_S)
            last = time.monotonic()
            self.hooks.before_publish_batch()
            try:
                seqs = self._publish(batch)
            except redis.RedisError as exc:
                self.stats.redis_errors += 1
                self.stats.last_error = repr(exc)
                self.stats.last_error_at = time.time()
                log.warning("publishing %d events failed, will retry: %s", len(batch), exc)
                time.sleep(backoff)
                backoff = min(backoff * 2, 1.0)
                continue
            except Exception:  # a bug must not kill the thread silently
                log.exception("publisher thread error; dropping %d events", len(batch))
                seqs = [0] * len(batch)
            backoff = 0.05
            window_jobs.update(item.job for item in batch if item.is_lifecycle)
            if (elapsed := time.monotonic() - window_start) >= RATE_WINDOW:
                jobs_rate, window_start = len(window_jobs) / elapsed, time.monotonic()
                window_jobs.clear()
            with self._cond:
                for item, seq in zip(batch, seqs, strict=True):
                    self._buffer.popleft()
                    item.seq = seq
                    if item.done is not None:
                        item.done.set()
                self.stats.published += len(batch)
                self._cond.notify_all()
            if self.stats.unreported:
                self._report()

    def _report(self) -> None:
        """Add the drops and failed calls since the last report to the metrics hash."""
        stats = self.stats
        dropped, errors = stats.dropped, stats.redis_errors
        k = self.keys.metrics
        pipe = self.redis.pipeline(transaction=False)
        pipe.hincrby(k, "events_dropped", dropped - stats.dropped_reported)
        pipe.hincrby(k, "publish_errors", errors - stats.errors_reported)
        if errors > stats.errors_reported:
            pipe.hset(
                k,
                mapping={
                    "publish_last_error": stats.last_error[:300],
                    "publish_last_error_at": repr(stats.last_error_at),
                },
            )
        try:
            pipe.execute()
        except redis.RedisError as exc:  # away again: the next batch reports them
            log.warning("could not report %d dropped events: %s", dropped, exc)
            return
        stats.dropped_reported, stats.errors_reported = dropped, errors

    def _publish(self, batch: list[_Pending]) -> list[int]:
        k = self.keys
        s = self.settings
        if self._receipt is None:
            self._receipt = uuid.uuid4().hex
        keys = [k.dirty, k.metrics, k.epoch, k.receipt(self._receipt)]
        args: list[Any] = [
            s.replay_max_events,
            s.replay_ttl_seconds,
            k.events_channel,
            self._epoch_candidate,
            k.log(""),
        ]
        seen = self._seen
        no_floor = (0, "")
        packed = []
        for item in batch:
            if item.raw is not None:
                _pack_late(item)
            floor, fallback = seen.get(item.job, no_floor)
            packed.append(f"{item.job}{SEP}{item.packed}{SEP}{floor}{SEP}{fallback}{RS}")
        args.append("".join(packed))
        try:
            out = self._script(keys, args)
        except redis.RedisError:
            raise  # it may have run: the retry of this batch goes under the same receipt
        except BaseException:
            self._receipt = None  # the batch is dropped: the next one is another
            raise
        self._receipt = None
        results = (out.decode() if isinstance(out, bytes) else str(out)).split(RS)
        seqs = []
        with self._cond:  # remember() writes here too
            for item, result in zip(batch, results, strict=True):
                seq_text, _, state = result.partition(SEP)
                seq = int(seq_text)
                seen[item.job] = (seq, state)
                seen.move_to_end(item.job)
                seqs.append(seq)
            while len(seen) > SEEN_MAX:
                seen.popitem(last=False)
        return seqs


_publisher: Publisher | None = None
_lock = threading.Lock()


def _forget_after_fork() -> None:
    # The parent's publisher thread did not survive the fork: the child makes its own.
    global _publisher, _lock
    _publisher = None
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)


def get_publisher() -> Publisher:
    """This process's publisher; a forked child gets a fresh one (threads do not fork)."""
    global _publisher
    publisher = _publisher
    if publisher is None:
        with _lock:
            if _publisher is None:
                _publisher = Publisher(get_settings())
            publisher = _publisher
    return publisher
