"""What a heartbeat says about its worker: pool, load, memory, counts per task."""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

import celery
from celery.worker import state as worker_state

from workers.worker_stats import WorkerStats

MAX_REGISTERED = 1000
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return 0


def pool_info(pool: Any) -> tuple[str, int, list[int]]:
    """(pool type, concurrency, child pids)."""
    module = type(pool).__module__.rsplit(".", 1)[-1] if pool is not None else "unknown"
    kind = {"thread": "threads", "gevent": "gevent", "eventlet": "eventlet"}.get(module, module)
    pids: list[int] = []
    inner = getattr(pool, "_pool", None)
    if inner is not None and hasattr(inner, "_pool"):
        pids = [int(p.pid) for p in list(inner._pool) if getattr(p, "pid", None)]
    concurrency = 1
    try:
        concurrency = int(pool.num_processes)
    except Exception:
        concurrency = int(getattr(pool, "limit", None) or 1)
    return kind, concurrency, pids


def _queues(consumer: Any) -> list[str]:
    tc = getattr(consumer, "task_consumer", None)
    try:
        return sorted(q.name for q in tc.queues) if tc is not None else []
    except Exception:
        return []


def registered(consumer: Any) -> list[str]:
    """The worker's task names, without Celery's own (bounded)."""
    try:
        names = consumer.app.tasks.keys()
    except Exception:
        return []
    return sorted(n for n in names if not n.startswith("celery."))[:MAX_REGISTERED]


def snapshot(consumer: Any, stats: WorkerStats, started: float, freq: float) -> dict[str, Any]:
    pool = getattr(consumer, "pool", None)
    kind, concurrency, pids = pool_info(pool)
    active = list(worker_state.active_requests)
    active_set = set(active)
    reserved = [r for r in list(worker_state.reserved_requests) if r not in active_set]
    per_task = stats.counters.totals() if stats.counters is not None else {}
    stats.update_prefetch_times(per_task)
    with stats.lock:
        received = dict(stats.received)
        revoked = dict(stats.revoked)
    prefetched = Counter(r.name for r in reserved)
    running = Counter(r.name for r in active)
    for name in set(received) | set(revoked) | set(prefetched) | set(running):
        per_task.setdefault(name, {})
    for name, t in per_task.items():
        t["received"] = received.get(name, 0)
        t["revoked"] = revoked.get(name, 0)
        t["prefetched"] = prefetched.get(name, 0)
        t["active"] = running.get(name, 0)
        if name in stats.prefetch_time:
            t["prefetch_time"] = round(stats.prefetch_time[name], 6)
    totals = {k: sum(t.get(k, 0) for t in per_task.values()) for k in ("succeeded", "failed")}
    pid = os.getpid()
    try:
        loadavg = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        loadavg = [0.0, 0.0, 0.0]
    return {
        "hostname": str(consumer.hostname),
        "pid": pid,
        "pool": kind,
        "concurrency": concurrency,
        "processes": pids,
        "queues": _queues(consumer),
        "active": len(active),
        "reserved": len(reserved),
        "processed": int(worker_state.all_total_count[0]),
        "received": sum(received.values()),
        "succeeded": totals["succeeded"],
        "failed": totals["failed"],
        "retried": sum(t.get("retried", 0) for t in per_task.values()),
        "revoked": sum(revoked.values()),
        "loadavg": loadavg,
        "rss": rss_bytes(pid) + sum(rss_bytes(p) for p in pids),
        "freq": freq,
        "started": started,
        "sw_ver": celery.__version__,
        "registered": registered(consumer),
        "tasks": per_task,
    }
