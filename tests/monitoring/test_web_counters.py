"""Each web process's own counters reach /metrics, labelled with the process."""

from __future__ import annotations

import socket

import psutil
from prometheus_client.parser import text_string_to_metric_families

from tests.monitoring.helpers import Api, eventually
from tests.support import WebService, WorkerService, http
from tests.support.ws import watch_to_end

LOOPS = {"hub", "recorder", "janitor", "monitor", "socket-warden", "ws-pinger", "jobs-latest"}
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(api: Api) -> Samples:
    text = api.request("GET", "/metrics").text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def serving_process(web: WebService) -> str:
    """The label of the web server's app process (gunicorn's worker, its child)."""
    (child,) = psutil.Process(web.pid).children()
    return f"{socket.gethostname()}:{child.pid}"


def test_delivered_and_recorded_counters_of_the_web_process_move(
    web: WebService, worker: WorkerService, api: Api
) -> None:
    # given the web process's counters now
    process = serving_process(web)
    label = (("process", process),)
    before = samples(api)
    delivered = before[("agentdeck_web_events_delivered_total", label)]
    recorded = before[("agentdeck_web_events_recorded_total", label)]
    one_by_one = before[("agentdeck_web_recorder_passes_one_by_one_total", label)]
    # and every background loop of it listed with its failures
    loops = {
        dict(labels)["loop"]
        for name, labels in before
        if name == "agentdeck_web_loop_failures_total" and dict(labels)["process"] == process
    }
    assert loops == LOOPS
    assert ("agentdeck_web_jobs_reconciled_total", label) in before
    assert ("agentdeck_web_hook_failures_total", label) in before
    # when a job runs while a client watches it
    r = http.post(
        f"{web.url}/api/jobs",
        json={"agent": "echo", "input": {"text": "a b c", "steps": 5, "delay": 0.2}},
    )
    assert r.status_code == 202, r.text
    events = watch_to_end(web.url, r.json()["id"])
    # then its live events were counted as delivered, and its events as recorded in SQL
    after = eventually(
        lambda: samples(api),
        lambda m: m[("agentdeck_web_events_recorded_total", label)] >= recorded + len(events),
        timeout=15,
    )
    assert after[("agentdeck_web_events_delivered_total", label)] > delivered
    # and the recorder stored them together, not by its slower one-by-one path
    assert after[("agentdeck_web_recorder_passes_one_by_one_total", label)] == one_by_one
