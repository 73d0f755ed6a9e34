"""`GET /metrics`: Prometheus text, computed at scrape time from Redis.

Flower's metric names and labels, from the workers' heartbeats (their
counters are cumulative per worker process, as Prometheus counters are), plus
Agentdeck's own: queue depths, WebSocket clients of every web process,
events published and dropped, failed publish calls, the event delivery
latency histogram, and each web process's own counters (`agentdeck_web_*`,
labelled `process`: see `web_counters`). Nothing is kept in the web process
between scrapes, so any number of web processes agree.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from webapp import quarantine
from webapp.auth.guard import require_all_jobs
from webapp.hub import FANOUT_BUCKETS
from webapp.monitor import broker_queues, histo, web_counters
from webapp.monitor.latency import LATENCY_BUCKETS
from webapp.monitor.loop import ws_clients_total
from webapp.monitor.worker_status import list_workers
from webapp.services import Services, services, text

bp = Blueprint("metrics", __name__)

EVENT_TYPES = (
    ("task-received", "received"),
    ("task-started", "started"),
    ("task-succeeded", "succeeded"),
    ("task-failed", "failed"),
    ("task-retried", "retried"),
    ("task-revoked", "revoked"),
)


def flower_families(workers: list[dict[str, Any]]) -> Iterator[Metric]:
    events = CounterMetricFamily(
        "flower_events", "Number of events", labels=["worker", "type", "task"]
    )
    runtime = HistogramMetricFamily(
        "flower_task_runtime_seconds", "Task runtime", labels=["worker", "task"]
    )
    prefetch = GaugeMetricFamily(
        "flower_task_prefetch_time_seconds",
        "The time the task spent waiting at the celery worker to be executed.",
        labels=["worker", "task"],
    )
    prefetched = GaugeMetricFamily(
        "flower_worker_prefetched_tasks",
        "Number of tasks of given type prefetched at a worker",
        labels=["worker", "task"],
    )
    online = GaugeMetricFamily("flower_worker_online", "Worker online status", labels=["worker"])
    executing = GaugeMetricFamily(
        "flower_worker_number_of_currently_executing_tasks",
        "Number of tasks currently executing at a worker",
        labels=["worker"],
    )
    for w in workers:
        host = w["hostname"]
        online.add_metric([host], 1.0 if w["online"] else 0.0)
        if not w["online"]:
            continue
        info = w["info"]
        executing.add_metric([host], float(info.get("active", 0)))
        for name, t in sorted((info.get("tasks") or {}).items()):
            for type_, field in EVENT_TYPES:
                if t.get(field):
                    events.add_metric([host, type_, name], float(t[field]))
            if t.get("runtime"):
                buckets = [(le, float(n)) for le, n in histo.cumulative(t["runtime"])]
                runtime.add_metric([host, name], buckets, float(t.get("runtime_sum", 0.0)))
            if "prefetch_time" in t:
                prefetch.add_metric([host, name], float(t["prefetch_time"]))
            prefetched.add_metric([host, name], float(t.get("prefetched", 0)))
    yield from (events, runtime, prefetch, prefetched, online, executing)


def agentdeck_families(svc: Services, workers: list[dict[str, Any]]) -> Iterator[Metric]:
    ready = GaugeMetricFamily(
        "agentdeck_queue_length", "Messages ready in the broker queue", labels=["queue"]
    )
    unacked = GaugeMetricFamily(
        "agentdeck_queue_unacked",
        "Messages taken by a worker, not yet acknowledged",
        labels=["queue"],
    )
    for q in broker_queues.queues(svc, workers):
        ready.add_metric([q["name"]], float(q["messages"]))
        unacked.add_metric([q["name"]], float(q["unacked"]))
    yield ready
    yield unacked
    yield GaugeMetricFamily(
        "agentdeck_websocket_clients",
        "WebSocket clients connected to all web processes",
        value=float(ws_clients_total(svc)),
    )
    k = svc.settings.keys
    yield from publish_families({text(f): text(v) for f, v in svc.redis.hgetall(k.metrics).items()})
    yield GaugeMetricFamily(
        "agentdeck_recorder_quarantined_jobs",
        "Jobs the recorder gave up storing in SQL (ids and errors: the quarantine hash)",
        value=float(quarantine.count(svc.redis, k)),
    )
    yield GaugeMetricFamily(
        "agentdeck_workers_online",
        "Workers sending heartbeats",
        value=float(sum(1 for w in workers if w["online"])),
    )
    raw = {text(f): text(v) for f, v in svc.redis.hgetall(k.latency).items()}
    buckets = []
    running = 0.0
    for i in range(len(LATENCY_BUCKETS) + 1):
        running += float(raw.get(str(i), 0))
        le = repr(LATENCY_BUCKETS[i]) if i < len(LATENCY_BUCKETS) else "+Inf"
        buckets.append((le, running))
    latency = HistogramMetricFamily(
        "agentdeck_event_delivery_latency_seconds",
        "Event created (its ts) to fanned out to WebSocket clients by a web process",
    )
    latency.add_metric([], buckets, float(raw.get("sum", 0.0)))
    yield latency


def publish_families(shared: dict[str, str]) -> Iterator[Metric]:
    """From the metrics hash every process's publisher adds to."""
    yield CounterMetricFamily(
        "agentdeck_events_published",
        "Events published (given a seq and sent on pub/sub)",
        value=float(shared.get("events_published", 0)),
    )
    yield CounterMetricFamily(
        "agentdeck_events_dropped",
        "Events a publisher shed (all but lifecycle ones) with its buffer full, Redis away;"
        " counted once Redis answers again",
        value=float(shared.get("events_dropped", 0)),
    )
    yield CounterMetricFamily(
        "agentdeck_publish_errors",
        "Publish calls that failed (Redis away or slow) and were retried",
        value=float(shared.get("publish_errors", 0)),
    )
    last_error = GaugeMetricFamily(
        "agentdeck_publish_last_error_timestamp_seconds",
        "When the last failed publish call (of any process) failed, and its error",
        labels=["error"],
    )
    if "publish_last_error_at" in shared:
        error = shared.get("publish_last_error", "")
        last_error.add_metric([error], float(shared["publish_last_error_at"]))
    yield last_error


def web_process_families(svc: Services) -> Iterator[Metric]:
    """Each live web process's in-memory counters, labelled with its process."""
    label = ["process"]
    delivered = CounterMetricFamily(
        "agentdeck_web_events_delivered",
        "Job events the web process's hub handed, live, to a client's subscription",
        labels=label,
    )
    recorded = CounterMetricFamily(
        "agentdeck_web_events_recorded",
        "Events the web process's recorder stored in SQL",
        labels=label,
    )
    one_by_one = CounterMetricFamily(
        "agentdeck_web_recorder_passes_one_by_one",
        "Recorder passes whose jobs could not be stored together and went one by one"
        " (slower; a job that keeps failing is quarantined)",
        labels=label,
    )
    reconciled = CounterMetricFamily(
        "agentdeck_web_jobs_reconciled",
        "Jobs the web process's janitor ended from Celery's result backend",
        labels=label,
    )
    hook_failures = CounterMetricFamily(
        "agentdeck_web_hook_failures", "Hook calls that raised, in the web process", labels=label
    )
    loop_failures = CounterMetricFamily(
        "agentdeck_web_loop_failures",
        "Failed rounds of the web process's background loops (hub: pub/sub connection lost)",
        labels=["process", "loop"],
    )
    fanout = HistogramMetricFamily(
        "agentdeck_ws_fanout_seconds",
        "Time from a pub/sub message in to its frames written to every client whose socket"
        " could take them at once (the hub's fan-out)",
        labels=label,
    )
    fanout_cpu = HistogramMetricFamily(
        "agentdeck_ws_fanout_cpu_seconds",
        "CPU time of the hub's fan-out of a pub/sub message (its wall time less what other"
        " processes took meanwhile)",
        labels=label,
    )
    for process, c in sorted(web_counters.every_process(svc).items()):
        delivered.add_metric([process], float(c.get("delivered", 0)))
        recorded.add_metric([process], float(c.get("recorded", 0)))
        one_by_one.add_metric([process], float(c.get("recorded_one_by_one", 0)))
        reconciled.add_metric([process], float(c.get("reconciled", 0)))
        hook_failures.add_metric([process], float(c.get("hook_failures", 0)))
        for loop, n in sorted((c.get("loop_failures") or {}).items()):
            loop_failures.add_metric([process, loop], float(n))
        _add_fanout(fanout, process, c.get("fanout"), c.get("fanout_sum"))
        _add_fanout(fanout_cpu, process, c.get("fanout_cpu"), c.get("fanout_cpu_sum"))
    yield from (delivered, recorded, one_by_one, reconciled, hook_failures, loop_failures)
    yield from (fanout, fanout_cpu)


def _add_fanout(family: HistogramMetricFamily, process: str, counts: Any, total: Any) -> None:
    if not isinstance(counts, list) or len(counts) != len(FANOUT_BUCKETS) + 1:
        return  # a process that does not count it (an older version)
    running, buckets = 0, []
    for bound, n in zip([*map(str, FANOUT_BUCKETS), "+Inf"], counts, strict=True):
        running += int(n)
        buckets.append((bound, float(running)))
    family.add_metric([process], buckets, float(total or 0.0))


class _Collector:
    def __init__(self, svc: Services) -> None:
        self.svc = svc

    def collect(self) -> Iterator[Metric]:
        workers = list_workers(self.svc)
        yield from flower_families(workers)
        yield from agentdeck_families(self.svc, workers)
        yield from web_process_families(self.svc)


def render(svc: Services) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(svc))  # type: ignore[arg-type]
    return generate_latest(registry)


@bp.get("/metrics")
@require_all_jobs
def metrics() -> Response:
    return Response(render(services()), headers={"Content-Type": CONTENT_TYPE_LATEST})
