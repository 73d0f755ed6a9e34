"""Event delivery latency: event created (its `ts`) -> fanned out by this web process.

`DeliveryLatency`, a hook, hands each envelope the hub fans out to `observe`
(its raw text); counts gather in memory
and `flush` adds them to a Redis hash (HINCRBY, one round trip a second), so
/metrics served by any web process shows every process's deliveries.
"""

from __future__ import annotations

import bisect
import threading
import time

import redis

from workers.envelope import EnvelopeError, read_ts
from workers.hooks import Hook

# Seconds; +Inf implied.
LATENCY_BUCKETS: tuple[float, ...] = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5)
LATENCY_BUCKETS += (1.0, 2.5, 5.0, 10.0)


class LatencyHistogram:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = [0] * (len(LATENCY_BUCKETS) + 1)
        self._sum = 0.0

    def observe(self, raw: str) -> None:
        try:
            ts = read_ts(raw)
        except EnvelopeError:
            return
        seconds = max(0.0, time.time() - ts)
        i = bisect.bisect_left(LATENCY_BUCKETS, seconds)
        with self._lock:
            self._counts[i] += 1
            self._sum += seconds

    def flush(self, client: redis.Redis, key: str) -> None:
        with self._lock:
            counts, total = self._counts, self._sum
            self._counts = [0] * len(counts)
            self._sum = 0.0
        n = sum(counts)
        if not n:
            return
        pipe = client.pipeline(transaction=False)
        for i, c in enumerate(counts):
            if c:
                pipe.hincrby(key, str(i), c)
        pipe.hincrby(key, "count", n)
        pipe.hincrbyfloat(key, "sum", total)
        try:
            pipe.execute()
        except redis.RedisError:
            with self._lock:  # keep them for the next flush
                for i, c in enumerate(counts):
                    self._counts[i] += c
                self._sum += total


class DeliveryLatency(Hook):
    def __init__(self, histogram: LatencyHistogram) -> None:
        self.histogram = histogram

    def on_envelope(self, raw: str, job: str) -> None:
        self.histogram.observe(raw)
