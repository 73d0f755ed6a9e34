"""The working core, end to end: REST submit → Celery → events over WebSocket and REST."""

from __future__ import annotations

import time
from typing import Any

from tests.support import WebService, WorkerService, http
from tests.support.ws import WsClient, is_final, watch_to_end


def submit(web_url: str, agent: str, **input: Any) -> dict[str, Any]:
    r = http.post(f"{web_url}/api/jobs", json={"agent": agent, "input": input}, timeout=10)
    assert r.status_code == 202, r.text
    return r.json()


def rest_events(web_url: str, job_id: str, since: int = 0) -> list[dict[str, Any]]:
    r = http.get(f"{web_url}/api/jobs/{job_id}/events", params={"since": since}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["events"]


def test_echo_streams_every_event_in_order_and_rest_matches(
    web: WebService, worker: WorkerService
) -> None:
    # given a WebSocket client subscribed from the start of a new echo job
    job = submit(web.url, "echo", text="the quick brown fox", steps=3, delay=0.01)
    ws = WsClient(web.url)
    try:
        assert ws.subscribe_job(job["id"], since=0)["type"] == "subscribed"
        # when the job runs to the end
        events = ws.events_until(job["id"], is_final)
    finally:
        ws.close()
    # then seq is 1..N with no gap, from job.queued to job.succeeded
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert events[0]["type"] == "job.queued" and events[0]["state"] == "PENDING"
    assert events[-1]["type"] == "job.succeeded" and events[-1]["state"] == "SUCCESS"
    assert events[-1]["data"]["result"] == "the quick brown fox"
    types = [e["type"] for e in events]
    for expected in ("job.received", "job.started", "step.started", "step.finished", "output"):
        assert expected in types
    assert types.count("step.finished") == 3
    # and the output chunks arrive in order
    assert "".join(e["data"]["text"] for e in events if e["type"] == "output") == (
        "the quick brown fox"
    )
    # and REST serves exactly the same events
    assert rest_events(web.url, job["id"]) == events
    final = http.get(f"{web.url}/api/jobs/{job['id']}", timeout=10).json()
    assert final["state"] == "SUCCESS" and final["result"] == "the quick brown fox"


def test_late_subscriber_with_since_gets_exactly_the_rest(
    web: WebService, worker: WorkerService
) -> None:
    # given an echo job that has finished
    job = submit(web.url, "echo", text="a b c d", steps=2, delay=0)
    everything = watch_to_end(web.url, job["id"])
    n = len(everything)
    # when a late client subscribes with since=k
    k = 4
    late = WsClient(web.url)
    try:
        subscribed = late.subscribe_job(job["id"], since=k)
        got = late.events_until(job["id"], is_final)
    finally:
        late.close()
    # then it gets exactly k+1..N
    assert subscribed["head"] == n
    assert [e["seq"] for e in got] == list(range(k + 1, n + 1))
    assert got == everything[k:]


def test_fail_ends_in_failure_with_message_and_traceback(
    web: WebService, worker: WorkerService
) -> None:
    # given a fail job
    job = submit(web.url, "fail", message="kaboom 42")
    # when it runs
    events = watch_to_end(web.url, job["id"])
    # then it ends FAILURE with the message and a traceback
    last = events[-1]
    assert last["type"] == "job.failed" and last["state"] == "FAILURE"
    assert "kaboom 42" in last["data"]["error"]
    assert "Traceback" in last["data"]["traceback"]
    assert any(e["type"] == "step.finished" for e in events)


def test_cancelled_sleep_ends_revoked_within_two_seconds(
    web: WebService, worker: WorkerService
) -> None:
    # given a long sleep job that has started
    job = submit(web.url, "sleep", seconds=30)
    ws = WsClient(web.url)
    try:
        ws.subscribe_job(job["id"])
        ws.events_until(job["id"], lambda e: e["type"] == "job.started")
        # when it is cancelled
        t0 = time.monotonic()
        r = http.post(f"{web.url}/api/jobs/{job['id']}/cancel", timeout=10)
        assert r.status_code == 202
        events = ws.events_until(job["id"], is_final, timeout=10)
        elapsed = time.monotonic() - t0
    finally:
        ws.close()
    # then it ends REVOKED within 2 s
    assert events[-1]["type"] == "job.cancelled" and events[-1]["state"] == "REVOKED"
    assert elapsed < 2.0
    # and cancelling again says it already ended
    again = http.post(f"{web.url}/api/jobs/{job['id']}/cancel", timeout=10)
    assert again.status_code == 409


def test_retry_creates_a_new_job_with_the_same_input(
    web: WebService, worker: WorkerService
) -> None:
    # given a failed job
    job = submit(web.url, "fail", message="try again")
    ws = WsClient(web.url)
    try:
        ws.subscribe_job(job["id"])
        ws.events_until(job["id"], is_final)
        # when it is retried
        r = http.post(f"{web.url}/api/jobs/{job['id']}/retry", timeout=10)
        assert r.status_code == 202
        retried = r.json()
        ws.subscribe_job(retried["id"])
        events = ws.events_until(retried["id"], is_final)
    finally:
        ws.close()
    # then a new job with the same agent and input ran
    assert retried["id"] != job["id"]
    assert retried["retry_of"] == job["id"]
    assert retried["agent"] == "fail" and retried["input"] == {"message": "try again"}
    assert events[-1]["state"] == "FAILURE"


def test_idempotency_key_gives_one_job(web: WebService, worker: WorkerService) -> None:
    # given a submission with an idempotency key
    body: dict[str, Any] = {
        "agent": "echo",
        "input": {"text": "once", "steps": 1, "delay": 0},
        "idempotency_key": f"k-{time.time_ns()}",
    }
    first = http.post(f"{web.url}/api/jobs", json=body, timeout=10)
    # when it is sent again
    second = http.post(f"{web.url}/api/jobs", json=body, timeout=10)
    # then both answers name the same job
    assert first.status_code == 202 and second.status_code == 200
    assert first.json()["id"] == second.json()["id"]


def test_agents_are_served_with_their_json_schema(web: WebService) -> None:
    # when the agents are listed
    agents = {a["name"]: a for a in http.get(f"{web.url}/api/agents", timeout=10).json()["agents"]}
    # then the built-ins are there with schemas from their type hints
    echo = agents["echo"]["input_schema"]
    assert echo["properties"]["text"]["type"] == "string"
    assert echo["properties"]["steps"]["default"] == 3
    assert echo["properties"]["delay"]["type"] == "number"
    assert echo["required"] == ["text"]
    assert agents["fail"]["input_schema"]["required"] == ["message"]
    assert agents["sleep"]["input_schema"]["properties"]["seconds"]["type"] == "number"
    assert agents["echo"]["description"]


def test_tool_calls_logging_and_progress_become_events(
    web: WebService, worker: WorkerService
) -> None:
    # given the research agent, which calls a tool per source and logs with `logging`
    job = submit(web.url, "research", topic="otters", sources=2, delay=0)
    # when it runs
    events = watch_to_end(web.url, job["id"])
    # then each tool call shows its arguments and result, and logging became log events
    called = [e["data"] for e in events if e["type"] == "tool.called"]
    returned = [e["data"] for e in events if e["type"] == "tool.returned"]
    assert called == [{"tool": "search", "args": {"query": "otters", "page": p}} for p in (1, 2)]
    assert returned[1] == {"tool": "search", "result": {"hits": 1, "first": "otters: finding 2"}}
    logs = [e["data"] for e in events if e["type"] == "log"]
    assert {"level": "info", "message": "read otters: finding 1"} in logs
    assert [e["data"] for e in events if e["type"] == "progress"][-1] == {"done": 2, "total": 2}
    assert events[-1]["data"]["result"]["notes"] == ["otters: finding 1", "otters: finding 2"]


def test_an_agent_runs_lifecycle_events_come_in_their_natural_order(
    web: WebService, worker: WorkerService
) -> None:
    # given several quick agent jobs
    jobs = [submit(web.url, "echo", text="x", steps=1, delay=0)["id"] for _ in range(5)]
    for job_id in jobs:
        # when each has run
        types = [e["type"] for e in watch_to_end(web.url, job_id)]
        # then queued, received and started come in that order
        assert types[:3] == ["job.queued", "job.received", "job.started"]
