"""What each web process counts in memory, for /metrics: per process, from every process.

The hub's deliveries, the recorder's stored events, the janitor's reconciled
jobs, hook failures and each background loop's failures live in the process
that counted them. Each web process writes them to one Redis hash every 2 s
(its monitoring loop), so /metrics served by any web process shows every
process's, labelled with it; the serving process's own are read live. A
process silent for `STALE_AFTER` is gone: its entry is dropped.
"""

from __future__ import annotations

import json
import os
import socket
import time
from typing import Any

from webapp.services import Services, text

STALE_AFTER = 10.0


def process_id() -> str:
    """This web process, as a metric label: host:pid."""
    return f"{socket.gethostname()}:{os.getpid()}"


def snapshot(svc: Services) -> dict[str, Any]:
    return {
        "delivered": svc.hub.delivered,
        "recorded": svc.recorder.recorded,
        "recorded_one_by_one": svc.recorder.passes_one_by_one,
        "reconciled": svc.janitor.reconciled if svc.janitor is not None else 0,
        "hook_failures": svc.hooks.failures,
        "loop_failures": svc.loops.failures(),
        "fanout": list(svc.hub.fanout.wall),
        "fanout_sum": svc.hub.fanout.wall_sum,
        "fanout_cpu": list(svc.hub.fanout.cpu),
        "fanout_cpu_sum": svc.hub.fanout.cpu_sum,
    }


def report(svc: Services, process: str) -> None:
    entry = {"ts": time.time(), **snapshot(svc)}
    svc.redis.hset(svc.settings.keys.web_counters, process, json.dumps(entry))


def every_process(svc: Services) -> dict[str, dict[str, Any]]:
    """Process -> its counters: the live web processes', this one's read now."""
    key = svc.settings.keys.web_counters
    now = time.time()
    found: dict[str, dict[str, Any]] = {}
    stale = []
    for field, raw in svc.redis.hgetall(key).items():
        try:
            entry = json.loads(text(raw))
            if now - float(entry["ts"]) > STALE_AFTER:
                stale.append(field)
                continue
        except (ValueError, KeyError, TypeError):
            stale.append(field)
            continue
        found[text(field)] = entry
    if stale:
        svc.redis.hdel(key, *stale)
    found[process_id()] = snapshot(svc)
    return found
