"""Per-task statistics of a worker: what its heartbeat reports.

Counting is kept off Redis: the task signal receivers of `signals` note
each run's start and end, the publisher's thread adds the notes to memory
shared with the main process (see `shared_counters`) before each batch, and
the heartbeat thread of the worker's main process sends it all every
`heartbeat_seconds` in one round trip (`heartbeat.py`). One receiver per
signal does both events and notes (a second one would cost each task a
second dispatch), and a note is one append: the task's thread does least.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from typing import Any

from celery import signals

from workers.hooks import HOOKS, Hook
from workers.shared_counters import SharedCounters

log = logging.getLogger("agentdeck.monitor")

SENT_HEADER = "agentdeck_sent"


class WorkerStats:
    """What this worker counts between heartbeats (main process side)."""

    def __init__(self) -> None:
        self.counters: SharedCounters | None = None
        self.lock = threading.Lock()
        self.received: dict[str, int] = {}
        self.revoked: dict[str, int] = {}
        self.prefetch_time: dict[str, float] = {}  # task -> mean of the last heartbeat interval
        self._prefetch_seen: dict[str, tuple[float, int]] = {}
        self._slot: int | None = None
        self._starts: dict[str, float] = {}
        # (task id, name, now, sent, received, monotonic) of a start; (task id,
        # name, column, monotonic) of an end: the task's thread appends, the
        # publisher's thread applies (apply_notes).
        self._notes: deque[tuple[Any, ...]] = deque()

    def slot(self) -> int:
        """0 in the main process (solo, threads), 1 + the pool index in a prefork child."""
        if self._slot is None:
            import billiard.process

            index = getattr(billiard.process.current_process(), "index", None)
            self._slot = 0 if index is None else int(index) + 1
        return self._slot

    def forget_slot(self) -> None:
        self._slot = None

    def count_received(self, name: str) -> None:
        with self.lock:
            self.received[name] = self.received.get(name, 0) + 1

    def count_revoked(self, name: str) -> None:
        with self.lock:
            self.revoked[name] = self.revoked.get(name, 0) + 1

    def run_started(
        self, task_id: str, name: str, now: float, sent: Any, received: float | None
    ) -> None:
        """A run begins: its queue wait (from `sent`) and prefetch time (from `received`)."""
        if self.counters is not None:
            self._notes.append((task_id, name, now, sent, received, time.monotonic()))

    def run_ended(self, task_id: str, name: str, column: int) -> None:
        """A run ends in `column` (SUCCEEDED, FAILED or RETRIED), with its runtime."""
        if self.counters is not None:
            self._notes.append((task_id, name, column, time.monotonic()))

    def apply_notes(self) -> None:
        """Add the runs noted so far to the shared counters (the publisher's thread)."""
        counters, notes = self.counters, self._notes
        while notes:
            note = notes.popleft()
            if counters is None:
                continue
            if len(note) == 6:
                task_id, name, now, sent, received, at = note
                self._starts[task_id] = at
                wait = now - sent if isinstance(sent, (int, float)) else None
                prefetch = now - received if received is not None else None
                counters.started(self.slot(), name, wait, prefetch)
            else:
                task_id, name, column, at = note
                start = self._starts.pop(task_id, None)
                runtime = at - start if start is not None else None
                counters.finished(self.slot(), name, column, runtime)

    def update_prefetch_times(self, per_task: dict[str, dict[str, Any]]) -> None:
        """Received -> started at the worker: the mean over the runs that started since
        the previous heartbeat (the last mean when none did)."""
        for name, t in per_task.items():
            total, n = float(t.pop("prefetch_sum", 0.0)), int(t.pop("prefetch_n", 0))
            before_total, before_n = self._prefetch_seen.get(name, (0.0, 0))
            if n > before_n:
                self.prefetch_time[name] = max(0.0, (total - before_total) / (n - before_n))
            self._prefetch_seen[name] = (total, n)


class ApplyNotes(Hook):
    """The publisher's thread adds the runs noted by the tasks' threads, per batch."""

    def __init__(self, stats: WorkerStats) -> None:
        self.stats = stats

    def before_publish_batch(self) -> None:
        self.stats.apply_notes()


STATS = WorkerStats()
os.register_at_fork(after_in_child=STATS.forget_slot)
# Registered with the counters it drains, as the signal receivers are connected with
# them: notes must never pile up where nothing applies them.
HOOKS.add(ApplyNotes(STATS))


@signals.worker_init.connect
def on_worker_init(sender: Any = None, **kwargs: Any) -> None:
    # Before the pool forks: the children inherit the shared counters.
    app = getattr(sender, "app", None)
    names = list(app.tasks.keys()) if app is not None else []
    conc = getattr(sender, "concurrency", None)
    conc = conc if isinstance(conc, int) and conc > 0 else (os.cpu_count() or 2)
    autoscale = getattr(sender, "autoscale", None)
    if autoscale:
        conc = max(conc, int(max(autoscale)))
    STATS.counters = SharedCounters(names, slots=conc * 2 + 8)
