"""The dashboard's samples: one every SAMPLE_EVERY seconds, for all web processes.

Whichever web process takes the time slot's lock computes the sample from
the workers' heartbeats (cumulative counters and histograms: the difference
with the previous heartbeat gives what finished since; rates and percentiles
are over the last WINDOW seconds of that) and the broker's queue depths,
keeps it in a capped Redis list (an hour) and PUBLISHes it on the workers
channel, so every page's dashboard moves at once. Nothing here grows with
the number of tasks.
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
# Rates and percentiles are over the last WINDOW seconds: what one 2-second sample
# sees swings between 0 and twice the rate as heartbeats and tasks fall in or out.
WINDOW = 30.0
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


def _host_delta(cur: dict[str, Any], prev: dict[str, Any] | None) -> dict[str, Any]:
    """What the host finished since the heartbeat the previous sample saw: nothing when
    no new heartbeat came or when there is no such heartbeat (first seen); everything
    since its start when it restarted (its counters start again from zero)."""
    if prev is None or prev.get("beat") == cur["beat"]:
        return {"succeeded": 0, "failed": 0, "runtime": None, "wait": None}
    base = prev if prev.get("boot") == cur["boot"] else {}
    return {
        "succeeded": max(0, cur["succeeded"] - int(base.get("succeeded", 0))),
        "failed": max(0, cur["failed"] - int(base.get("failed", 0))),
        "runtime": histo.delta(cur["runtime"], base.get("runtime")),
        "wait": histo.delta(cur["wait"], base.get("wait")),
    }


def _sparse(counts: list[int]) -> list[int] | None:
    return counts if any(counts) else None


def compute(
    workers: list[dict[str, Any]], prev: dict[str, Any], queues: list[dict[str, Any]], now: float
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(sample, state to keep for the next one).

    The state holds each online host's counters as of the heartbeat this sample saw,
    and what each sample of the last WINDOW seconds counted (`recent`): a sample's
    rates are the window's counts over the time it covers, its percentiles those of
    the window's histograms. Sampling that stopped for longer than the window
    (no web process ran) starts again from nothing rather than from a gap.
    """
    fresh = "hosts" not in prev or now - float(prev.get("ts", 0.0)) > WINDOW
    prev_hosts: dict[str, Any] = {} if fresh else prev["hosts"]
    since = now if fresh else float(prev.get("since", now))
    hosts: dict[str, Any] = {}
    ok = bad = 0
    runtime = [0] * histo.NB
    wait = [0] * histo.NB
    for w in workers:
        if not w["online"]:
            continue
        cur = _host_totals(w["info"])
        cur["beat"] = w["last_heartbeat"]
        done = _host_delta(cur, prev_hosts.get(w["hostname"]))
        hosts[w["hostname"]] = cur
        ok += done["succeeded"]
        bad += done["failed"]
        histo.add(runtime, done["runtime"])
        histo.add(wait, done["wait"])
    kept = [] if fresh else [e for e in prev.get("recent") or [] if e[0] > now - WINDOW]
    recent = [*kept, [now, ok, bad, _sparse(runtime), _sparse(wait)]]
    span = min(WINDOW, now - since)
    ok_n = sum(e[1] for e in recent)
    bad_n = sum(e[2] for e in recent)
    runtime_w = histo.total(e[3] for e in recent)
    wait_w = histo.total(e[4] for e in recent)

    def rate(n: int) -> float:
        return round(n / span, 3) if span > 0 else 0.0

    sample = {
        "ts": now,
        "window": round(span, 3),  # the seconds the rates and percentiles cover
        "throughput": rate(ok_n + bad_n),
        "succeeded": rate(ok_n),
        "failed": rate(bad_n),
        "succeeded_count": ok,  # finished since the previous sample
        "failed_count": bad,
        "runtime_p50": histo.quantile(0.5, runtime_w),
        "runtime_p95": histo.quantile(0.95, runtime_w),
        "wait_p50": histo.quantile(0.5, wait_w),
        "wait_p95": histo.quantile(0.95, wait_w),
        "queues": {q["name"]: q["messages"] for q in queues},
        "queued": sum(q["messages"] for q in queues),
        "workers_online": sum(1 for w in workers if w["online"]),
        "active": sum(int(w["info"].get("active", 0)) for w in workers if w["online"]),
    }
    return sample, {"ts": now, "since": since, "hosts": hosts, "recent": recent}


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
