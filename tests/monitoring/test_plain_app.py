"""A plain Celery app with the one documented line is monitored like Agentdeck's own."""

from __future__ import annotations

import uuid

from prometheus_client.parser import text_string_to_metric_families

from tests.monitoring import plain_app
from tests.monitoring.conftest import PlainWorker
from tests.monitoring.helpers import Api, eventually, wait_final, wait_for_heartbeat


def _tasks(api: Api, **params: object) -> dict:
    return api.get("/api/tasks", params=params)


def test_plain_tasks_show_with_their_states_and_worker(
    api: Api, online_plain_worker: PlainWorker
) -> None:
    # given a worker of an app that only added `import workers.monitoring`
    host = online_plain_worker.hostname
    # when it runs a task that succeeds and one that fails
    ok = plain_app.add.delay(2, 3)
    bad = plain_app.boom.delay("kaput")
    # then both are in the task list with their final states, name, args and worker
    assert wait_final(api, ok.id)["state"] == "SUCCESS"
    assert wait_final(api, bad.id)["state"] == "FAILURE"
    listed = _tasks(api, limit=100)
    assert listed[ok.id]["name"] == "plain.add"
    assert listed[ok.id]["state"] == "SUCCESS"
    assert listed[ok.id]["args"] == "(2, 3)"
    assert listed[ok.id]["result"] == "5"
    assert listed[ok.id]["worker"] == host
    assert listed[bad.id]["state"] == "FAILURE"
    assert "ValueError: kaput" in listed[bad.id]["exception"]
    assert "raise ValueError(message)" in listed[bad.id]["traceback"]
    # and the worker's heartbeat counts them
    worker = eventually(
        lambda: next(
            w for w in api.get("/api/monitor/workers")["workers"] if w["hostname"] == host
        ),
        lambda w: w["info"]["tasks"].get("plain.boom", {}).get("failed", 0) >= 1,
        timeout=10,
    )
    info = worker["info"]
    assert worker["online"] and info["pool"] == "prefork" and info["concurrency"] == 2
    assert info["queues"] == ["plain"] and "plain.add" in info["registered"]
    assert info["succeeded"] >= 1 and info["failed"] >= 1 and info["processed"] >= 2
    assert info["rss"] > 0 and len(info["loadavg"]) == 3


def test_search_filters_and_stable_pages(api: Api, online_plain_worker: PlainWorker) -> None:
    # given a batch of tasks with a tag only they carry
    tag = uuid.uuid4().hex[:8]
    sent = [plain_app.greet.delay(f"{tag}-g{i}", user=i) for i in range(12)]
    failed = plain_app.boom.delay(f"{tag}-boom")
    for r in [*sent, failed]:
        wait_final(api, r.id)
    ids = {r.id for r in sent}
    # when searching with Flower's syntax, then each term narrows to the right tasks
    assert set(_tasks(api, search=f"args:{tag}-g", limit=100)) == ids
    assert set(_tasks(api, search=f"name:greet args:{tag}", limit=100)) == ids
    assert set(_tasks(api, search=f"kwargs:user=7 args:{tag}", limit=100)) == {sent[7].id}
    assert set(_tasks(api, search=f'result:"{tag}-g3 #3"', limit=100)) == {sent[3].id}
    assert set(_tasks(api, search=f"state:FAILURE {tag}", limit=100)) == {failed.id}
    assert set(_tasks(api, search=f"state:SUCCESS {tag}", limit=100)) == ids
    assert _tasks(api, search=f"state:FAILURE name:greet {tag}", limit=100) == {}
    assert set(_tasks(api, taskname="plain.boom", search=tag, limit=100)) == {failed.id}
    host = online_plain_worker.hostname
    assert set(_tasks(api, workername=host, search=tag, limit=100)) == ids | {failed.id}
    # and pages of 5, in any sort order, cover every task exactly once
    for sort_by in (None, "name", "-received", "started", "-state"):
        seen: list[str] = []
        for offset in range(0, 15, 5):
            params = {"search": f"args:{tag}-g", "limit": 5, "offset": offset}
            if sort_by:
                params["sort_by"] = sort_by
            seen += list(_tasks(api, **params))
        assert sorted(seen) == sorted(ids), sort_by
    # and the page API counts and orders the same way
    body = api.get("/api/monitor/tasks", params={"search": f"args:{tag}-g", "sort_by": "-received"})
    assert body["total"] == 12
    received = [t["received"] for t in body["tasks"]]
    assert received == sorted(received, reverse=True)


def _samples(api: Api) -> dict[tuple[str, tuple], float]:
    text = api.request("GET", "/metrics").text
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_metrics_parse_and_counters_move(api: Api, online_plain_worker: PlainWorker) -> None:
    # given the metrics now (once a heartbeat has counted every task run so far)
    host = online_plain_worker.hostname
    wait_for_heartbeat(api, host)
    key = (
        "flower_events_total",
        (("task", "plain.add"), ("type", "task-succeeded"), ("worker", host)),
    )
    before = _samples(api)
    published = before[("agentdeck_events_published_total", ())]
    # when three more tasks succeed
    for i in range(3):
        wait_final(api, plain_app.add.delay(i, i).id)
    # then (after the next heartbeat) Flower's counter for them has moved by 3
    after = eventually(lambda: _samples(api), lambda m: m.get(key, 0) >= before.get(key, 0) + 3, 10)
    assert after[key] == before.get(key, 0) + 3
    # queued, started (carrying the receipt time: it started at once), succeeded
    assert after[("agentdeck_events_published_total", ())] >= published + 3 * 3
    assert after[("flower_worker_online", (("worker", host),))] == 1.0
    runtime = ("flower_task_runtime_seconds_count", (("task", "plain.add"), ("worker", host)))
    assert after[runtime] >= 3
    assert ("flower_task_prefetch_time_seconds", (("task", "plain.add"), ("worker", host))) in after
    assert ("flower_worker_number_of_currently_executing_tasks", (("worker", host),)) in after
    assert ("agentdeck_queue_length", (("queue", "plain"),)) in after
    assert ("agentdeck_websocket_clients", ()) in after
    assert after[("agentdeck_event_delivery_latency_seconds_count", ())] > 0
