"""The dashboard's samples: one every SAMPLE_EVERY seconds, for all web processes.

Whichever web process takes the time slot's lock computes the sample from
the workers' heartbeats (cumulative counters and histograms: the difference
with the previous heartbeat gives rates and percentiles) and the broker's
queue depths, keeps it in a capped Redis list (an hour) and PUBLISHes it on
the workers channel, so every page's dashboard moves at once. Nothing here
grows with the number of tasks.
"""

from __future__ import annotations

import json
import os
from typing import Any

from webapp.monitor import broker_queues, histo
from webapp.monitor.worker_status import list_workers, redis_now
from webapp.services import Services, text

SAMPLE_EVERY = 2.0
KEEP = int(3600 / SAMPLE_EVERY)
SAMPLE_TYPE = "dashboard.sample"


def _host_totals(info: dict[str, Any]) -> dict[str, Any]:
    tasks = (info.get("tasks") or {}).values()
    return {
        "boot": f"{info.get('pid')}-{info.get('started')}",
        "succeeded": sum(int(t.get("succeeded", 0)) for t in tasks),
        "failed": sum(int(t.get("failed", 0)) for t in tasks),
        "runtime": histo.total(t.get("runtime") for t in tasks),
        "wait": histo.total(t.get("wait") for t in tasks),
    }


def _host_rates(cur: dict[str, Any], prev: dict[str, Any] | None, beat: float) -> dict[str, Any]:
    """This host's rates since its previous heartbeat, or its last ones if none came."""
    if prev is not None and prev.get("beat") == beat:
        return prev.get("rates") or {}
    same = prev is not None and prev.get("boot") == cur["boot"]
    base = prev if same and prev is not None else {}
    dt = beat - base["beat"] if base else 0.0
    done_ok = cur["succeeded"] - int(base.get("succeeded", 0))
    done_bad = cur["failed"] - int(base.get("failed", 0))
    return {
        "succeeded": done_ok / dt if dt > 0 else 0.0,
        "failed": done_bad / dt if dt > 0 else 0.0,
        "runtime": histo.delta(cur["runtime"], base.get("runtime")),
        "wait": histo.delta(cur["wait"], base.get("wait")),
    }


def compute(
    workers: list[dict[str, Any]], prev: dict[str, Any], queues: list[dict[str, Any]], now: float
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(sample, totals to keep for the next one)."""
    totals: dict[str, Any] = {}
    ok = bad = 0.0
    runtime = [0] * histo.NB
    wait = [0] * histo.NB
    for w in workers:
        if not w["online"]:
            continue
        cur = _host_totals(w["info"])
        cur["beat"] = w["last_heartbeat"]
        rates = _host_rates(cur, prev.get(w["hostname"]), cur["beat"])
        cur["rates"] = rates
        totals[w["hostname"]] = cur
        ok += rates.get("succeeded", 0.0)
        bad += rates.get("failed", 0.0)
        histo.add(runtime, rates.get("runtime"))
        histo.add(wait, rates.get("wait"))
    sample = {
        "ts": now,
        "throughput": round(ok + bad, 3),
        "succeeded": round(ok, 3),
        "failed": round(bad, 3),
        "runtime_p50": histo.quantile(0.5, runtime),
        "runtime_p95": histo.quantile(0.95, runtime),
        "wait_p50": histo.quantile(0.5, wait),
        "wait_p95": histo.quantile(0.95, wait),
        "queues": {q["name"]: q["messages"] for q in queues},
        "queued": sum(q["messages"] for q in queues),
        "workers_online": sum(1 for w in workers if w["online"]),
        "active": sum(int(w["info"].get("active", 0)) for w in workers if w["online"]),
    }
    return sample, totals


def take_sample(svc: Services) -> dict[str, Any] | None:
    """Take this slot's sample if no other web process has; returns it (or None)."""
    k = svc.settings.keys
    now = redis_now(svc.redis)
    slot = int(now // SAMPLE_EVERY)
    if not svc.redis.set(k.dashboard_lock(slot), os.getpid(), nx=True, ex=60):
        return None
    workers = list_workers(svc)
    raw = svc.redis.get(k.dashboard_totals)
    prev = json.loads(raw) if raw else {}
    sample, totals = compute(workers, prev, broker_queues.queues(svc, workers), now)
    message = json.dumps({"type": SAMPLE_TYPE, "ts": now, "data": sample}, separators=(",", ":"))
    pipe = svc.redis.pipeline(transaction=False)
    pipe.set(k.dashboard_totals, json.dumps(totals), ex=3600)
    pipe.lpush(k.dashboard_samples, json.dumps(sample, separators=(",", ":")))
    pipe.ltrim(k.dashboard_samples, 0, KEEP - 1)
    pipe.publish(k.workers_channel, message)
    pipe.execute()
    return sample


def history(svc: Services, seconds: float = 3600) -> list[dict[str, Any]]:
    """The samples of the last `seconds`, oldest first."""
    n = max(1, min(KEEP, int(seconds / SAMPLE_EVERY) + 1))
    raws = svc.redis.lrange(svc.settings.keys.dashboard_samples, 0, n - 1)
    out = []
    for raw in reversed(raws):
        try:
            out.append(json.loads(text(raw)))
        except ValueError:
            continue
    return out
