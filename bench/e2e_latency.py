"""End-to-end latency: event created in the worker (its `ts`) → received by a WebSocket client.

Starts an isolated platform (embedded Valkey or REDIS_URL, SQLite or
DATABASE_URL, a Celery worker, gunicorn gevent), runs echo jobs and records,
for every event, the client's receive time minus the envelope's `ts`. The
baseline, measured in the same run on the same Redis, is a bare
PUBLISH → SUBSCRIBE round trip: the floor any Redis pub/sub design pays.

    python -m bench.e2e_latency [--events 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import threading
import time
from dataclasses import dataclass

import redis

from bench.report import Figure
from tests.support import WebService, WorkerService, http, start_platform
from tests.support.ws import WsClient, is_final


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def redis_baseline(url: str, n: int) -> list[float]:
    """ms from PUBLISH to the subscriber's receipt, for n small messages."""
    client = redis.Redis.from_url(url)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe("bench:latency")
    got: list[float] = []
    done = threading.Event()

    def listen() -> None:
        while len(got) < n:
            msg = pubsub.get_message(timeout=1.0)
            if msg is not None:
                got.append((time.time() - float(msg["data"])) * 1000)
        done.set()

    t = threading.Thread(target=listen, daemon=True)
    t.start()
    for _ in range(n):
        client.publish("bench:latency", repr(time.time()))
        time.sleep(0.002)  # paced like agent events, not a burst
    done.wait(30)
    pubsub.close()
    return got


def job_latencies(url: str, text: str, steps: int, delay: float) -> list[float]:
    r = http.post(
        f"{url}/api/jobs",
        timeout=10,
        json={"agent": "echo", "input": {"text": text, "steps": steps, "delay": delay}},
    )
    job_id = r.json()["id"]
    ws = WsClient(url)
    ws.subscribe_job(job_id, since=1)  # skip job.queued: it was created before we listened
    latencies: list[float] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        frame = json.loads(ws.conn.recv())
        now = time.time()
        if frame.get("type") != "events":
            continue
        for event in frame["events"]:
            latencies.append((now - event["ts"]) * 1000)
        if is_final(frame["events"][-1]):
            break
    ws.close()
    return latencies


def report(name: str, values: list[float], base: float | None = None) -> None:
    p50, p99 = pct(values, 50), pct(values, 99)
    ratio = f"  p50 ×{p50 / base:.1f} of baseline" if base else ""
    print(
        f"{name:<38} n={len(values):>5}  p50={p50:7.2f} ms  p99={p99:7.2f} ms  "
        f"mean={statistics.mean(values):7.2f} ms{ratio}"
    )


@dataclass
class Latencies:
    baseline: list[float]  # bare Redis PUBLISH → SUBSCRIBE
    paced: list[float]  # an echo job's steps, every 4 ms
    burst: list[float]  # an echo job's output, as fast as it goes


def measure(events: int) -> Latencies:
    """ms from each event's `ts` to its receipt, on an isolated platform of its own."""
    saved = dict(os.environ)  # restored after: `python -m bench` runs other suites next
    platform = start_platform()
    os.environ.update(platform.exported)  # this process's requests carry the admin token
    worker, web = WorkerService(platform), WebService(platform)
    try:
        worker.start()
        web.start()
        job_latencies(web.url, "warm up", 1, 0)
        base = redis_baseline(platform.redis_url, events)
        paced = job_latencies(web.url, "w", events // 2, 0.004)
        words = " ".join(f"w{i}" for i in range(events))
        burst = job_latencies(web.url, words, 0, 0)
        return Latencies(base, paced, burst)
    finally:
        web.stop()
        worker.stop()
        platform.close()
        os.environ.clear()
        os.environ.update(saved)


def figures(quick: bool) -> list[Figure]:
    got = measure(200 if quick else 1000)
    base50 = pct(got.baseline, 50)
    paced50 = pct(got.paced, 50)
    bare = "bare Redis PUBLISH→SUBSCRIBE p50"
    return [
        Figure(
            "end-to-end p50, paced (a step every 4 ms)",
            paced50,
            "ms",
            base50,
            bare,
            "≤ 1 ms",
            paced50 <= 1.0,
        ),
        Figure(
            "end-to-end p50, burst (output as fast as it goes)",
            pct(got.burst, 50),
            "ms",
            base50,
            bare,
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1000)
    args = parser.parse_args()
    got = measure(args.events)
    print(f"\nend-to-end latency, worker event ts → WebSocket client ({args.events} events)")
    report("baseline: bare Redis PUBLISH→SUBSCRIBE", got.baseline)
    base50 = pct(got.baseline, 50)
    report("agentdeck, paced (steps every 4 ms)", got.paced, base50)
    report("agentdeck, burst (output as fast as possible)", got.burst, base50)


if __name__ == "__main__":
    main()
