"""Per-task counters shared by a worker's main process and its pool children.

The task signals that say how a run ended fire in the process that ran it: a
prefork child. The heartbeat is sent by the main process. So the counters
live in one anonymous shared mapping made by the main process before the pool
forks; each child writes only its own row (its pool index), the heartbeat
adds the rows up. No lock between processes, no IPC, no Redis per task.
"""

from __future__ import annotations

import bisect
import mmap
import threading
from collections.abc import Iterable
from typing import Any

# Upper bounds (seconds) of the runtime and queue-wait histograms; +Inf is implied.
BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BUCKETS += (30.0, 60.0, 300.0)
NB = len(BUCKETS) + 1
STARTED, SUCCEEDED, FAILED, RETRIED, RUNTIME_SUM, WAIT_SUM, PREFETCH_SUM, PREFETCH_N = range(8)
RUNTIME_B = 8
WAIT_B = RUNTIME_B + NB
COLS = WAIT_B + NB
MICRO = 1_000_000
MAX_NAMES = 1024


def bucket_of(seconds: float) -> int:
    return bisect.bisect_left(BUCKETS, seconds)


class SharedCounters:
    """A table [slot][task][column] of int64 in shared memory."""

    def __init__(self, names: Iterable[str], slots: int) -> None:
        self.names = sorted(set(names))[:MAX_NAMES]
        self.index = {n: i for i, n in enumerate(self.names)}
        self.other = len(self.names)  # tasks registered after the fork
        self.tasks = self.other + 1
        self.slots = max(1, slots)
        self._mm = mmap.mmap(-1, self.slots * self.tasks * COLS * 8)
        self.cells = memoryview(self._mm).cast("q")
        self.lock = threading.Lock()  # threads pool: several runs in one process

    def _base(self, slot: int, name: str) -> int:
        t = self.index.get(name, self.other)
        return ((slot % self.slots) * self.tasks + t) * COLS

    def started(self, slot: int, name: str, wait: float | None, prefetch: float | None) -> None:
        base = self._base(slot, name)
        c = self.cells
        with self.lock:
            c[base + STARTED] += 1
            if wait is not None and wait >= 0:
                c[base + WAIT_SUM] += int(wait * MICRO)
                c[base + WAIT_B + bucket_of(wait)] += 1
            if prefetch is not None and prefetch >= 0:
                c[base + PREFETCH_SUM] += int(prefetch * MICRO)
                c[base + PREFETCH_N] += 1

    def finished(self, slot: int, name: str, column: int, runtime: float | None) -> None:
        base = self._base(slot, name)
        c = self.cells
        with self.lock:
            c[base + column] += 1
            if runtime is not None and runtime >= 0:
                c[base + RUNTIME_SUM] += int(runtime * MICRO)
                c[base + RUNTIME_B + bucket_of(runtime)] += 1

    def totals(self) -> dict[str, dict[str, Any]]:
        """Every slot added up, per task name (names with nothing yet are left out)."""
        out: dict[str, dict[str, Any]] = {}
        c = self.cells
        for t in range(self.tasks):
            row = [0] * COLS
            for slot in range(self.slots):
                base = (slot * self.tasks + t) * COLS
                if c[base + STARTED] or c[base + FAILED] or c[base + RETRIED]:
                    for i in range(COLS):
                        row[i] += c[base + i]
            if not any(row):
                continue
            name = self.names[t] if t < self.other else "other"
            out[name] = {
                "started": row[STARTED],
                "succeeded": row[SUCCEEDED],
                "failed": row[FAILED],
                "retried": row[RETRIED],
                "runtime_sum": row[RUNTIME_SUM] / MICRO,
                "runtime": row[RUNTIME_B : RUNTIME_B + NB],
                "wait_sum": row[WAIT_SUM] / MICRO,
                "wait": row[WAIT_B : WAIT_B + NB],
                "prefetch_sum": row[PREFETCH_SUM] / MICRO,
                "prefetch_n": row[PREFETCH_N],
            }
        return out
