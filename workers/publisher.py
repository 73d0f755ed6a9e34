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

import json
import logging
import os
import re
import threading
import time
import uuid
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

import redis

from workers.events import STATE_AFTER, EventType, now
from workers.settings import Settings, get_settings

log = logging.getLogger("agentdeck.publisher")

# One call publishes a whole batch, in order.
# KEYS: dirty, metrics, epoch, receipt
# ARGV: max_events, ttl, channel, epoch_candidate, then the prefixes of the seq, log
#       and state keys, then one argument per event, its fields joined by \x1f:
#       job, head, mid, new_state, tail, seq_floor, state_fallback
# (one argument per event, not ten: packing the arguments was most of the
# publisher's CPU; the per-job keys are the prefixes plus the job id).
# The floor and fallback are what this process last saw of the job: if Redis
# lost its data, the job's seq goes on from there instead of restarting at 1.
# The receipt makes a retry idempotent: a call that timed out may still have
# run (a paused Redis runs what was sent once it resumes), so the retry, under
# the same receipt, gets the first run's seqs back for the events that run
# published and publishes only the rest (a receipt lives 60 s; retries come
# within seconds). The epoch gets the server's clock appended, so each data
# loss gives a new one, even when the same process is the first to publish.
PUBLISH_LUA = """
local function fields(s)
  local f, start = {}, 1
  while true do
    local i = string.find(s, '\\31', start, true)
    if not i then
      f[#f + 1] = string.sub(s, start)
      return f
    end
    f[#f + 1] = string.sub(s, start, i - 1)
    start = i + 1
  end
end
local out = {}
local receipt = redis.call('GET', KEYS[4])
if receipt then out = cjson.decode(receipt) end
local skip = #out / 2
if redis.call('EXISTS', KEYS[3]) == 0 then
  local t = redis.call('TIME')
  redis.call('SET', KEYS[3], ARGV[4] .. '-' .. t[1] .. '.' .. t[2])
end
local cap = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
local n = #ARGV - 7
for i = skip, n - 1 do
  local e = fields(ARGV[8 + i])
  local kseq, klog, kstate = ARGV[5] .. e[1], ARGV[6] .. e[1], ARGV[7] .. e[1]
  local seq = redis.call('INCR', kseq)
  local floor = tonumber(e[6])
  if seq <= floor then
    seq = floor + 1
    redis.call('SET', kseq, seq)
  end
  local stored = redis.call('GET', kstate)
  local cur = stored
  if not cur and e[7] ~= '' then cur = e[7] end
  local st = e[4]
  if st == '' then
    st = cur or 'PENDING'
  elseif cur == 'SUCCESS' or cur == 'FAILURE' or cur == 'REVOKED' then
    st = cur
  elseif st == 'RECEIVED' and cur == 'STARTED' then
    st = cur
  end
  if st ~= stored then redis.call('SET', kstate, st, 'EX', ttl) end
  local ev = e[2] .. seq .. e[3] .. st .. e[5]
  redis.call('ZADD', klog, seq, ev)
  if seq > cap then redis.call('ZREMRANGEBYRANK', klog, 0, -(cap + 1)) end
  if seq == 1 or seq % 100 == 0 then
    redis.call('EXPIRE', kseq, ttl)
    redis.call('EXPIRE', klog, ttl)
    redis.call('EXPIRE', kstate, ttl)
  end
  redis.call('ZADD', KEYS[1], seq, e[1])
  redis.call('PUBLISH', ARGV[3], ev)
  out[#out + 1] = seq
  out[#out + 1] = st
end
redis.call('SET', KEYS[4], cjson.encode(out), 'EX', 60)
if n > skip then redis.call('HINCRBY', KEYS[2], 'events_published', n - skip) end
return out
"""

SEP = "\x1f"  # between an event's fields in the script's arguments (JSON never holds it)
_PLAIN = re.compile(r"[A-Za-z0-9_.:@-]*")
_STATE_AFTER = {t.value: s.value for t, s in STATE_AFTER.items()}
LIFECYCLE_PREFIX = "job."
BATCH_MAX = 500
LINGER_SECONDS = 0.02  # under load, gather events this long between round trips
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
    buffered: int = 0
    last_error: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def _json_str(value: str) -> str:
    """A JSON string; the usual job ids and event types skip the encoder."""
    return f'"{value}"' if _PLAIN.fullmatch(value) else json.dumps(value)


def _split_envelope(job: str, type_: str, ts: float, data: dict[str, Any]) -> list[str]:
    """The envelope as head/mid/tail around the seq and state the script fills in."""
    head = '{"job":' + _json_str(job) + ',"seq":'
    mid = ',"type":' + _json_str(type_) + ',"ts":' + repr(float(ts)) + ',"state":"'
    tail = '","data":' + json.dumps(data, separators=(",", ":"), default=str) + "}"
    return [head, mid, tail]


class Publisher:
    def __init__(self, settings: Settings, client: redis.Redis | None = None) -> None:
        self.settings = settings
        self.keys = settings.keys
        self.redis = client or redis.Redis.from_url(
            settings.redis_url, socket_timeout=5, socket_connect_timeout=2
        )
        self._script = self.redis.register_script(PUBLISH_LUA)
        self._buffer: deque[_Pending] = deque()
        self._cond = threading.Condition()
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
        if SEP in job:
            log.error("dropping an event of a job whose id holds \\x1f: %r", job)
            return 0
        head, mid, tail = _split_envelope(job, type_str, ts or now(), data or {})
        item = _Pending(
            job=job,
            packed=SEP.join((job, head, mid, str(state), tail)),
            is_lifecycle=type_str.startswith(LIFECYCLE_PREFIX),
            done=threading.Event() if wait else None,
        )
        with self._cond:
            if len(self._buffer) >= self.settings.publish_buffer_max and not item.is_lifecycle:
                # Redis has been away long enough to fill the buffer: keep the
                # lifecycle events (state must converge), shed the chatter.
                self.stats.dropped += 1
                return 0
            self._buffer.append(item)
            if item.done is not None:
                self._urgent = True
                self._cond.notify_all()
            elif len(self._buffer) == 1:
                self._cond.notify()  # the thread sleeps only on an empty buffer
        if item.done is not None:
            item.done.wait(timeout)
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
    def _run(self) -> None:
        backoff = 0.05
        last = 0.0
        jobs_rate, window_start = 0.0, time.monotonic()
        window_jobs: set[str] = set()
        while True:
            with self._cond:
                while not self._buffer:
                    self._cond.wait()
                # Under load, at most one round trip per LINGER: a wake-up and a
                # round trip per event cost a busy worker far more than the batch.
                # Otherwise (an agent's stream), an idle publisher, a waiting emit
                # or a flush go at once.
                under_load = jobs_rate > LOAD_JOBS_PER_S
                while under_load and not self._urgent and len(self._buffer) < BATCH_MAX:
                    left = last + LINGER_SECONDS - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
                self._urgent = False
                batch = [self._buffer[i] for i in range(min(len(self._buffer), BATCH_MAX))]
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
                    item.seq = int(seq)
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
        for item in batch:
            floor, fallback = seen.get(item.job, (0, ""))
            args.append(f"{item.packed}{SEP}{floor}{SEP}{fallback}")
        try:
            out = self._script(keys=keys, args=args)
        except redis.RedisError:
            raise  # it may have run: the retry of this batch goes under the same receipt
        except BaseException:
            self._receipt = None  # the batch is dropped: the next one is another
            raise
        self._receipt = None
        seqs = []
        for i, item in enumerate(batch):
            seq, state = int(out[2 * i]), out[2 * i + 1]
            self._seen[item.job] = (seq, state.decode() if isinstance(state, bytes) else state)
            self._seen.move_to_end(item.job)
            seqs.append(seq)
        while len(self._seen) > SEEN_MAX:
            self._seen.popitem(last=False)
        return seqs


_publisher: Publisher | None = None
_publisher_pid = 0
_lock = threading.Lock()


def get_publisher() -> Publisher:
    """This process's publisher; a forked child gets a fresh one (threads do not fork)."""
    global _publisher, _publisher_pid
    pid = os.getpid()
    if _publisher is None or _publisher_pid != pid:
        with _lock:
            if _publisher is None or _publisher_pid != pid:
                _publisher = Publisher(get_settings())
                _publisher_pid = pid
    return _publisher


def emit(job: str, type_: EventType | str, data: dict[str, Any] | None = None, **kw: Any) -> int:
    return get_publisher().emit(job, type_, data, **kw)
