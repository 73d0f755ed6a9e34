"""Web-side faults: a browser offline, the web process killed or stopped, a slow reader."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import psutil
import pytest
import websocket
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from launcher.net import wait_until
from tests.support import Platform, WebService, WorkerService, http
from tests.support.http import auth_headers
from tests.support.ws import WsClient, is_final
from workers.models import EventRow


def submit(url: str, agent: str, **input: Any) -> str:
    r = http.post(f"{url}/api/jobs", json={"agent": agent, "input": input}, timeout=10)
    assert r.status_code == 202, r.text
    return r.json()["id"]


def contiguous(events: list[dict], start: int = 1) -> bool:
    return [e["seq"] for e in events] == list(range(start, start + len(events)))


def test_client_offline_for_30s_gets_exactly_the_missed_events(
    web: WebService, worker: WorkerService
) -> None:
    # given a client watching a job that streams 500 events over ~30 s
    job_id = submit(web.url, "chatty", count=500, delay=0.06)
    ws = WsClient(web.url)
    ws.subscribe_job(job_id)
    before = ws.events_until(job_id, lambda e: e["type"] == "output" and e["seq"] >= 20)
    subscribed = ws.frames[0]
    # when it goes offline until the job has ended
    ws.close()
    final = WsClient(web.url)
    final.subscribe_job(job_id, since=before[-1]["seq"])
    final.events_until(job_id, is_final, timeout=60)
    final.close()
    # and comes back with its last seq (and epoch)
    back = WsClient(web.url)
    again = back.subscribe_job(job_id, since=before[-1]["seq"], epoch=subscribed["epoch"])
    missed = back.events_until(job_id, is_final, timeout=30)
    back.close()
    # then it gets exactly the events it missed, in order
    assert again["type"] == "subscribed"
    assert contiguous(before) and contiguous(missed, start=before[-1]["seq"] + 1)
    assert missed[-1]["seq"] == again["head"]
    outputs = [e for e in before + missed if e["type"] == "output"]
    assert len(outputs) == 500


def test_web_sigkilled_mid_job_client_resumes_without_gap_or_duplicate(
    web: WebService, worker: WorkerService, sql_engine: Engine
) -> None:
    # given a client watching a streaming job
    job_id = submit(web.url, "chatty", count=300, delay=0.01)
    ws = WsClient(web.url)
    ws.subscribe_job(job_id)
    seen = ws.events_until(job_id, lambda e: e["seq"] >= 30)
    # when the web process is SIGKILLed and comes back
    web.kill()
    with pytest.raises((websocket.WebSocketException, OSError)):
        while True:
            frame = ws.recv(timeout=10)  # drain what was in flight, then the socket dies
            if frame.get("type") == "events":
                seen.extend(e for e in frame["events"] if e["seq"] > seen[-1]["seq"])
    web.start()
    ws = WsClient(web.url)
    ws.subscribe_job(job_id, since=seen[-1]["seq"])
    rest = ws.events_until(job_id, is_final, timeout=60)
    ws.close()
    # then the client's sequence is 1..N with no gap and no duplicate
    everything = seen + rest
    assert contiguous(everything)
    assert everything[-1]["state"] == "SUCCESS"
    # and SQL has every event, including those emitted while web was down
    n = everything[-1]["seq"]

    def recorded() -> int:
        with Session(sql_engine) as s:
            return s.scalar(select(func.count()).where(EventRow.job_id == job_id)) or 0

    assert wait_until(lambda: recorded() == n, timeout=20)


def test_web_sigterm_says_going_away_to_clients(web: WebService) -> None:
    # given a connected client
    ws = WsClient(web.url)
    ws.send({"op": "subscribe", "topic": "jobs"})
    ws.wait_for(lambda f: f["type"] == "subscribed")
    # when the web process is stopped gracefully
    web.stop()
    # then the client gets a close frame with 1001 (going away) at once
    ws.conn.settimeout(10)
    opcode, frame = ws.conn.recv_data_frame(control_frame=True)
    assert opcode == websocket.ABNF.OPCODE_CLOSE
    assert int.from_bytes(frame.data[:2], "big") == 1001
    ws.close()
    web.start()


@pytest.fixture
def small_queue_web(platform: Platform) -> Iterator[WebService]:
    # 4 MiB: a reader starved of CPU for three seconds (a loaded CI machine) keeps up;
    # the one that never reads passes it within the ~7 MB stream all the same.
    service = WebService(
        platform, name="web-small-queue", extra_env={"AGENTDECK_CLIENT_QUEUE_BYTES": "4194304"}
    )
    service.start()
    yield service
    service.stop()


def web_worker_rss(service: WebService) -> int:
    master = psutil.Process(service.pid)
    return sum(p.memory_info().rss for p in [master, *master.children(recursive=True)])


def test_slow_consumer_is_cut_off_and_others_stay_fast(
    small_queue_web: WebService, worker: WorkerService
) -> None:
    url = small_queue_web.url
    rss_before = web_worker_rss(small_queue_web)
    # given a client that subscribes to a big stream and never reads (~7 MB at ~1.2 MB/s:
    # twice that pace saturated a loaded CI machine's two cores, and every reader lagged)
    job_id = submit(url, "chatty", count=700, delay=0.008, size=10_000)
    slow = websocket.create_connection(
        url.replace("http", "ws") + "/ws",
        timeout=10,
        sockopt=((socket.SOL_SOCKET, socket.SO_RCVBUF, 4096),),
        header=auth_headers(),
    )
    slow.send(json.dumps({"op": "subscribe", "topic": f"job:{job_id}", "since": 0}))
    # and a client that reads
    fast = WsClient(url)
    fast.subscribe_job(job_id)
    latencies: list[float] = []
    events: list[dict] = []
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        frame = fast.recv(timeout=30)
        if frame.get("type") != "events":
            continue
        now = time.time()
        for e in frame["events"]:
            latencies.append(now - e["ts"])
            events.append(e)
        if is_final(events[-1]):
            break
    fast.close()
    # then the reader got everything, promptly
    assert contiguous(events) and events[-1]["state"] == "SUCCESS"
    latencies.sort()
    p50, p99 = latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.99)]
    print(f"\nfast reader: p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, {len(events)} events")
    assert p99 < 2.0
    # and the slow client was cut off: reading now ends in a close, not the whole stream
    got, close_code = 0, None
    slow.settimeout(15)
    try:
        while True:
            opcode, frame = slow.recv_data_frame(control_frame=True)
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                close_code = int.from_bytes(frame.data[:2], "big")
                break
            if opcode == websocket.ABNF.OPCODE_TEXT:
                got += len(json.loads(frame.data).get("events", []))
    except (websocket.WebSocketException, OSError, ValueError):
        pass  # the socket was cut (maybe mid-frame) before a close frame could be read
    slow.close()
    assert close_code in (4001, None)
    assert got < len(events)
    # and the server's memory stayed flat (the stream was ~7 MB)
    assert web_worker_rss(small_queue_web) - rss_before < 60 * 1024 * 1024


@pytest.fixture
def own_worker(platform: Platform) -> Iterator[WorkerService]:
    service = WorkerService(platform, name="worker-warm", queues=("warm",), concurrency=1)
    service.start()
    yield service
    service.stop()


def test_warm_worker_shutdown_finishes_running_jobs(
    web: WebService, own_worker: WorkerService
) -> None:
    # given a job running on a worker
    r = http.post(
        f"{web.url}/api/jobs",
        timeout=10,
        json={"agent": "sleep", "input": {"seconds": 2}, "queue": "warm"},
    )
    job_id = r.json()["id"]
    ws = WsClient(web.url)
    ws.subscribe_job(job_id)
    ws.events_until(job_id, lambda e: e["type"] == "job.started", timeout=30)
    # when the worker gets a warm shutdown (SIGTERM)
    code = own_worker.stop(timeout=30)
    # then the job finished first
    events = ws.events_until(job_id, is_final, timeout=30)
    ws.close()
    assert events[-1]["state"] == "SUCCESS"
    assert code == 0
