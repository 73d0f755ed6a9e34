"""Give events their seq and publish them: one Redis round trip per batch.

Each process has one `Publisher` (see `get_publisher`). `emit` only appends
to an in-memory buffer; a background thread drains it, running the publish
script for every event in one pipelined round trip. The script assigns the
job's next seq, fixes the job's state, appends the envelope to the job's
replay log, marks the job for the recorder and PUBLISHes it, atomically.

Keeping Redis off the caller's path is what keeps the cost to a Celery
worker low, and the buffer is what carries events across a Redis outage.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import re
import threading
import time
import uuid
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Any

import redis

from workers.events import STATE_AFTER, EventType, now
from workers.settings import Settings, get_settings

log = logging.getLogger("agentdeck.publisher")

# One call publishes a whole batch, in order.
# KEYS: dirty, metrics, epoch, receipt
# ARGV: max_events, ttl, channel, epoch_candidate, then the prefixes of the seq, log
#       and state keys, then the events in one argument: each event's fields
#       joined by \x1f, each event ended by \x1e:
#       job, head, mid, new_state, tail, seq_floor, state_fallback
# (one argument, not ten per event: packing the arguments was most of the
# publisher's CPU; the per-job keys are the prefixes plus the job id).
# Returns "seq\x1fstate" per event, joined by \x1e.
# Each job's keys are touched once per call, however many of its events the
# batch holds (a short task's started and succeeded usually travel together):
# one INCRBY for its seqs, one read and one write of its state, one RPUSH of its
# log entries; one ZADD marks all the batch's jobs for the recorder. Each event
# still gets its own PUBLISH.
# The floor and fallback are what this process last saw of the job: if Redis
# lost its data, the job's seq goes on from there instead of restarting at 1.
# The receipt makes a retry idempotent: a call that timed out may still have
# run (a paused Redis runs what was sent once it resumes), so the retry, under
# the same receipt, gets the first run's seqs back for the events that run
# published and publishes only the rest (a receipt lives 60 s; retries come
# within seconds). The epoch gets the server's clock appended, so each data
# loss gives a new one, even when the same process is the first to publish.
PUBLISH_LUA = """
-- A field never holds \\31 or \\30 (JSON escapes them; emit refuses them elsewhere).
local F = '([^\\31\\30]*)'
local EVENT = string.rep(F .. '\\31', 6) .. F .. '\\30'
local out = {}
local receipt = redis.call('GET', KEYS[4])
if receipt then
  for item in string.gmatch(receipt, '[^\\30]+') do out[#out + 1] = item end
end
local skip = #out
if redis.call('EXISTS', KEYS[3]) == 0 then
  local t = redis.call('TIME')
  redis.call('SET', KEYS[3], ARGV[4] .. '-' .. t[1] .. '.' .. t[2])
end
local cap = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
local events, count, order = {}, {}, {}
local n = 0
for job, head, mid, st, tail, floor, fallback in string.gmatch(ARGV[8], EVENT) do
  n = n + 1
  if n > skip then
    events[#events + 1] = {job, head, mid, st, tail, floor, fallback}
  end
end
for _, e in ipairs(events) do
  local c = count[e[1]]
  if c then
    count[e[1]] = c + 1
  else
    count[e[1]] = 1
    order[#order + 1] = e[1]
  end
end
local jobs = {}
for _, e in ipairs(events) do
  local j = jobs[e[1]]
  if not j then
    local c = count[e[1]]
    local kseq = ARGV[5] .. e[1]
    local last = redis.call('INCRBY', kseq, c)
    local floor = tonumber(e[6])
    if last - c < floor then
      last = floor + c
      redis.call('SET', kseq, last)
    end
    local stored = redis.call('GET', ARGV[7] .. e[1])
    local cur = stored
    if not cur and e[7] ~= '' then cur = e[7] end
    local first = last - c + 1
    j = {first = first, last = last, nxt = first, stored = stored, cur = cur, log = {}}
    jobs[e[1]] = j
  end
  local seq = j.nxt
  j.nxt = seq + 1
  local cur, st = j.cur, e[4]
  if st == '' then
    st = cur or 'PENDING'
  elseif cur == 'SUCCESS' or cur == 'FAILURE' or cur == 'REVOKED' then
    st = cur
  elseif st == 'RECEIVED' and cur == 'STARTED' then
    st = cur
  end
  j.cur = st
  local ev = e[2] .. seq .. e[3] .. st .. e[5]
  j.log[#j.log + 1] = ev
  redis.call('PUBLISH', ARGV[3], ev)
  out[#out + 1] = seq .. '\\31' .. st
end
local dirty = {}
for _, job in ipairs(order) do
  local j = jobs[job]
  local kseq, klog, kstate = ARGV[5] .. job, ARGV[6] .. job, ARGV[7] .. job
  local state_set = j.cur ~= j.stored
  if state_set then redis.call('SET', kstate, j.cur, 'EX', ttl) end
  redis.call('RPUSH', klog, unpack(j.log))
  if j.last > cap then redis.call('LTRIM', klog, -cap, -1) end
  -- a new job, and every 100 events of a long one, push the expiry on
  if j.first == 1 or math.floor(j.last / 100) > math.floor((j.first - 1) / 100) then
    redis.call('EXPIRE', kseq, ttl)
    redis.call('EXPIRE', klog, ttl)
    if not state_set then redis.call('EXPIRE', kstate, ttl) end
  end
  dirty[#dirty + 1] = j.last
  dirty[#dirty + 1] = job
end
if #dirty > 0 then redis.call('ZADD', KEYS[1], unpack(dirty)) end
local joined = table.concat(out, '\\30')
redis.call('SET', KEYS[4], joined, 'EX', 60)
if n > skip then redis.call('HINCRBY', KEYS[2], 'events_published', n - skip) end
return joined
"""

SEP = "\x1f"  # between an event's fields in the script's arguments (JSON never holds it)
RS = "\x1e"  # between the events' results in the script's answer
_PLAIN = re.compile(r"[A-Za-z0-9_.:@-]*")
_STATE_AFTER = {t.value: s.value for t, s in STATE_AFTER.items()}
LIFECYCLE_PREFIX = "job."
BATCH_MAX = 500
LINGER_SECONDS = 0.05  # under load, gather events this long between round trips
# "Under load": events of more than this many jobs a second, as from a worker
# draining short tasks. An agent streaming fast is one job: it never waits.
LOAD_JOBS_PER_S = 50.0
RATE_WINDOW = 0.1
SEEN_MAX = 10_000  # jobs whose last seq and state this process remembers


@dataclass(slots=True)
class _Pending:
    job: str
    packed: str  # job, head, mid, new_state, tail joined by SEP (see PUBLISH_LUA)
    is_lifecycle: bool
    done: threading.Event | None = None
    seq: int = 0


@dataclass
class PublisherStats:
    published: int = 0
    dropped: int = 0
    redis_errors: int = 0
    last_error: str = ""


# One encoder for every event: json.dumps with options builds a new one per call.
_encode_data = json.JSONEncoder(separators=(",", ":"), default=str).encode


def _json_str(value: str) -> str:
    """A JSON string; the usual job ids and event types skip the encoder."""
    return f'"{value}"' if _PLAIN.fullmatch(value) else json.dumps(value)


def _pack(job: str, type_: str, ts: float, state: str, data: dict[str, Any]) -> str:
    """The envelope cut around the seq and the state the script fills in, as the
    script's argument: job, head, mid, new_state, tail joined by SEP."""
    return (
        f'{job}{SEP}{{"job":{_json_str(job)},"seq":{SEP},"type":{_json_str(type_)},'
        f'"ts":{float(ts)!r},"state":"{SEP}{state}{SEP}","data":{_encode_data(data)}}}'
    )


class Publisher:
    def __init__(self, settings: Settings, client: redis.Redis | None = None) -> None:
        self.settings = settings
        self.keys = settings.keys
        self.redis = client or redis.Redis.from_url(
            settings.redis_url, socket_timeout=5, socket_connect_timeout=2
        )
        self._script = self.redis.register_script(PUBLISH_LUA)
        # Producers append without a lock (deque appends are atomic) and wake the
        # thread only when it sleeps on an empty buffer: under load it wakes by
        # itself every LINGER, and a task's events cost its thread no lock and no
        # wake-up.
        self._buffer: deque[_Pending] = deque()
        self._cond = threading.Condition()
        self._idle = False  # the thread waits for the buffer to fill: emit must wake it
        self._urgent = False  # someone waits for the buffer: no lingering
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
            self.stats.dropped += 1
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
        elif self._idle:
            with self._cond:
                self._cond.notify()
        return item.seq

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
        """Wait for events (and, under load, until LINGER after the last round trip)."""
        with self._cond:
            # Idle is set before the buffer is looked at: an emit that appends after
            # the look sees it and wakes us (its notify waits for our wait()).
            self._idle = True
            while not self._buffer:
                self._cond.wait()
            self._idle = False
            # Under load, at most one round trip per LINGER: a wake-up and a round
            # trip per event cost a busy worker far more than the batch. Otherwise
            # (an agent's stream), a waiting emit or a flush go at once.
            while under_load and not self._urgent and len(self._buffer) < BATCH_MAX:
                left = last + LINGER_SECONDS - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
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
            try:
                seqs = self._publish(batch)
            except redis.RedisError as exc:
                self.stats.redis_errors += 1
                self.stats.last_error = repr(exc)
                log.warning("publishing %d events failed, will retry: %s", len(batch), exc)
                time.sleep(backoff)
                backoff = min(backoff * 2, 1.0)
                continue
            except Exception:  # a bug must not kill the thread silently
                log.exception("publisher thread error; dropping %d events", len(batch))
                seqs = [0] * len(batch)
            backoff = 0.05
            window_jobs.update(item.job for item in batch)
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
            k.seq(""),
            k.log(""),
            k.state(""),
        ]
        seen = self._seen
        no_floor = (0, "")
        packed = []
        for item in batch:
            floor, fallback = seen.get(item.job, no_floor)
            packed.append(f"{item.packed}{SEP}{floor}{SEP}{fallback}{RS}")
        args.append("".join(packed))
        try:
            out = self._script(keys=keys, args=args)
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


def emit(job: str, type_: EventType | str, data: dict[str, Any] | None = None, **kw: Any) -> int:
    return get_publisher().emit(job, type_, data, **kw)
