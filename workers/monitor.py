"""Worker presence and per-task statistics: the receivers that feed the heartbeat.

Counting is kept off Redis: each receiver adds to memory (see
`monitor_stats`), and the heartbeat thread of the worker's main process
sends it all every `heartbeat_seconds` in one round trip (`presence.py`).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

from celery import signals

from workers.monitor_stats import FAILED, RETRIED, SUCCEEDED, SharedCounters
from workers.signals import RECEIVED_KEY, loud  # the key: stamped by on_task_received

log = logging.getLogger("agentdeck.monitor")

SENT_HEADER = "agentdeck_sent"

_END_COLUMN = {"SUCCESS": SUCCEEDED, "FAILURE": FAILED, "RETRY": RETRIED}


class WorkerStats:
    """What this worker counts between heartbeats (main process side)."""

    def __init__(self) -> None:
        self.counters: SharedCounters | None = None
        self.lock = threading.Lock()
        self.received: dict[str, int] = {}
        self.revoked: dict[str, int] = {}
        self.prefetch_time: dict[str, float] = {}  # task -> mean of the last heartbeat interval
        self._prefetch_seen: dict[str, tuple[float, int]] = {}
        self._slot_pid = 0
        self._slot = 0
        self._starts: dict[str, float] = {}

    def slot(self) -> int:
        """0 in the main process (solo, threads), 1 + the pool index in a prefork child."""
        pid = os.getpid()
        if pid != self._slot_pid:
            import billiard.process

            index = getattr(billiard.process.current_process(), "index", None)
            self._slot = 0 if index is None else int(index) + 1
            self._slot_pid = pid
        return self._slot

    def update_prefetch_times(self, per_task: dict[str, dict[str, Any]]) -> None:
        """Received -> started at the worker: the mean over the runs that started since
        the previous heartbeat (the last mean when none did)."""
        for name, t in per_task.items():
            total, n = float(t.pop("prefetch_sum", 0.0)), int(t.pop("prefetch_n", 0))
            before_total, before_n = self._prefetch_seen.get(name, (0.0, 0))
            if n > before_n:
                self.prefetch_time[name] = max(0.0, (total - before_total) / (n - before_n))
            self._prefetch_seen[name] = (total, n)


STATS = WorkerStats()


@signals.worker_init.connect
@loud
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


@signals.before_task_publish.connect
@loud
def on_publish_stamp(headers: dict[str, Any] | None = None, **kwargs: Any) -> None:
    if headers is not None:
        headers[SENT_HEADER] = time.time()


@signals.task_received.connect
@loud
def on_received(request: Any = None, **kwargs: Any) -> None:
    name = request.name
    with STATS.lock:
        STATS.received[name] = STATS.received.get(name, 0) + 1
    # signals.on_task_received stamps the time on the request the pool child gets:
    # the child measures the prefetch time itself, and this process keeps nothing.


@signals.task_revoked.connect
@loud
def on_revoked(sender: Any = None, request: Any = None, **kwargs: Any) -> None:
    name = getattr(sender, "name", None) or getattr(request, "task", None) or "other"
    with STATS.lock:
        STATS.revoked[name] = STATS.revoked.get(name, 0) + 1


@signals.task_prerun.connect
@loud
def on_prerun(task_id: str | None = None, task: Any = None, **kwargs: Any) -> None:
    counters = STATS.counters
    if counters is None or task_id is None:
        return
    STATS._starts[task_id] = time.monotonic()
    req = task.request
    now = time.time()
    sent = getattr(req, SENT_HEADER, None)
    received = getattr(req, RECEIVED_KEY, None)
    wait = now - sent if isinstance(sent, (int, float)) else None
    prefetch = now - received if isinstance(received, (int, float)) else None
    counters.started(STATS.slot(), task.name, wait, prefetch)


@signals.task_postrun.connect
@loud
def on_postrun(
    task_id: str | None = None, task: Any = None, state: str | None = None, **kwargs: Any
) -> None:
    counters = STATS.counters
    if counters is None or task_id is None:
        return
    start = STATS._starts.pop(task_id, None)
    column = _END_COLUMN.get(state or "")
    if column is not None:
        runtime = time.monotonic() - start if start is not None else None
        counters.finished(STATS.slot(), task.name, column, runtime)
