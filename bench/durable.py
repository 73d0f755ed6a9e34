"""Durable runs: do suspended runs slow new jobs down, and how fast does an answer resume
a run?

Starts an isolated platform (embedded Valkey or REDIS_URL, SQLite or DATABASE_URL, a
Celery worker of 2 processes, gunicorn gevent) and measures, over the WebSocket:

- a new echo job's latency, from its `POST /api/jobs` to its `job.succeeded` on the
  `jobs` topic: with no suspended run, then with `--suspended` runs of the built-in
  `approval` agent suspended on their question, then with none again once they were
  answered (the phases without are pooled as the baseline). Each round does the three
  phases, each once the recorder has caught up with the events before it. The echo
  jobs go one at a time, `--pace` apart, so that the worker's publisher stays out of
  its under-load batching (which holds events up to 200 ms when more than 50 jobs a
  second go through a process) and the figures are the latency of one job;
- an answer's latency, from its `POST /api/jobs/<id>/input` to the resumed run's first
  event from a worker (`job.received` or `job.started`) on the job's topic, one answer at
  a time (each run ends before the next answer); and, on the way, to `job.resumed`
  (said by the web process that took the answer).

    python -m bench.durable [--rounds 3] [--samples 30] [--suspended 50] [--pace 0.05]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import redis

from tests.support import WebService, WorkerService, http, start_platform, wait_until
from tests.support.ws import WsClient
from workers.settings import get_settings

WORKER_EVENTS = ("job.received", "job.started")


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


@dataclass
class Watch:
    """One WebSocket on the `jobs` topic (and, in turn, on one job's topic)."""

    ws: WsClient
    seen: dict[tuple[str, str], float] = field(default_factory=dict)  # (job, type) → when

    @classmethod
    def open(cls, url: str) -> Watch:
        ws = WsClient(url)
        ws.send({"op": "subscribe", "topic": "jobs"})
        ws.wait_for(lambda f: f.get("type") == "subscribed" and f.get("topic") == "jobs")
        return cls(ws)

    def until(self, job_id: str, types: tuple[str, ...], timeout: float = 60) -> float:
        """perf_counter() when the first event of `types` of the job arrived (from now or
        already seen), taking frames as they come."""
        deadline = time.monotonic() + timeout
        while True:
            found = [self.seen[(job_id, t)] for t in types if (job_id, t) in self.seen]
            if found:
                return min(found)
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {types} for {job_id} within {timeout} s")
            frame = self.ws.recv(timeout=left)
            now = time.perf_counter()
            if frame.get("type") == "events":
                for event in frame["events"]:
                    self.seen.setdefault((event["job"], event["type"]), now)


def submit(url: str, agent: str, input: dict[str, Any]) -> str:
    r = http.post(f"{url}/api/jobs", json={"agent": agent, "input": input})
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


def echo_latencies(url: str, watch: Watch, n: int, pace: float) -> list[float]:
    """ms from POST to job.succeeded over the WebSocket, for n echo jobs one at a time,
    each started `pace` s after the one before."""
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        job_id = submit(url, "echo", {"text": "bench", "steps": 1, "delay": 0})
        out.append((watch.until(job_id, ("job.succeeded",)) - t0) * 1000)
        time.sleep(max(0.0, pace - (time.perf_counter() - t0)))
    return out


def suspend_runs(url: str, watch: Watch, n: int) -> list[str]:
    """n approval runs, each suspended on its question (recorded, so answerable)."""
    ids = [submit(url, "approval", {"topic": f"bench {i}"}) for i in range(n)]
    for job_id in ids:
        watch.until(job_id, ("job.suspended",))

    def all_recorded() -> bool:
        return all(
            any(s["status"] == "waiting" for s in http.get(f"{url}/api/jobs/{j}").json()["steps"])
            for j in ids
        )

    assert wait_until(all_recorded, 60), "the runs did not record their questions"
    return ids


def settle(client: redis.Redis) -> None:
    """Wait until the recorder has put every event in SQL (its dirty set is empty), so a
    phase measures the steady state, not the recorder catching up on the last one's."""
    dirty = get_settings().keys.dirty
    assert wait_until(lambda: client.zcard(dirty) == 0, 60, interval=0.05), "recorder behind"


def answer_latencies(url: str, ids: list[str]) -> tuple[list[float], list[float], list[float]]:
    """ms from the answer's POST to its 202, to job.resumed, and to the resumed run's
    first event from a worker, each over the job's own topic; one answer at a time."""
    to_202, to_resumed, to_run = [], [], []
    for job_id in ids:
        head = int(http.get(f"{url}/api/jobs/{job_id}/events").json()["head"])
        ws = WsClient(url)
        ws.subscribe_job(job_id, since=head)
        watch = Watch(ws)
        t0 = time.perf_counter()
        r = http.post(
            f"{url}/api/jobs/{job_id}/input",
            json={"answer": {"decision": "reject", "note": "bench"}},
        )
        to_202.append((time.perf_counter() - t0) * 1000)
        assert r.status_code == 202, r.text
        to_run.append((watch.until(job_id, WORKER_EVENTS) - t0) * 1000)
        to_resumed.append((watch.until(job_id, ("job.resumed",)) - t0) * 1000)
        watch.until(job_id, ("job.succeeded",))  # the run is over before the next answer
        ws.close()
    return to_202, to_resumed, to_run


def line(name: str, values: list[float]) -> str:
    return (
        f"| {name} | {len(values)} | {pct(values, 50):.1f} | {pct(values, 99):.1f} | "
        f"{statistics.mean(values):.1f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--samples", type=int, default=30, help="echo jobs per phase and round")
    parser.add_argument("--suspended", type=int, default=50, help="runs suspended per round")
    parser.add_argument("--pace", type=float, default=0.05, help="s from one echo job to the next")
    args = parser.parse_args()
    platform = start_platform()
    os.environ.update(platform.exported)  # this process's requests carry the admin token
    worker, web = WorkerService(platform, concurrency=2), WebService(platform)
    client = redis.Redis.from_url(platform.redis_url)
    baseline: list[float] = []
    during: list[float] = []
    ratios: list[float] = []
    to_202: list[float] = []
    to_resumed: list[float] = []
    to_run: list[float] = []
    try:
        worker.start()
        web.start()
        watch = Watch.open(web.url)
        echo_latencies(web.url, watch, 10, args.pace)  # warm up
        for _ in range(args.rounds):
            settle(client)
            before = echo_latencies(web.url, watch, args.samples, args.pace)
            ids = suspend_runs(web.url, watch, args.suspended)
            settle(client)
            with_them = echo_latencies(web.url, watch, args.samples, args.pace)
            answered = answer_latencies(web.url, ids)
            settle(client)
            after = echo_latencies(web.url, watch, args.samples, args.pace)
            baseline += before + after
            during += with_them
            ratios.append(pct(with_them, 50) / pct(before + after, 50))
            for into, got in zip((to_202, to_resumed, to_run), answered, strict=True):
                into += got
        watch.ws.close()
    finally:
        client.close()
        web.stop()
        worker.stop()
        platform.close()
    n = args.suspended
    print(
        f"\ndurable runs: worker of 2 processes, {args.rounds} rounds, {n} runs suspended per "
        f"round, echo jobs {args.pace * 1000:g} ms apart (times in ms)\n"
    )
    print("| measured | n | p50 | p99 | mean |")
    print("| --- | --- | --- | --- | --- |")
    print(line("echo job, POST → job.succeeded on /ws, 0 suspended", baseline))
    print(line(f"echo job, POST → job.succeeded on /ws, {n} suspended", during))
    print(line("answer, POST → its 202", to_202))
    print(line("answer, POST → job.resumed on /ws", to_resumed))
    print(line("answer, POST → the resumed run's first worker event on /ws", to_run))
    print(
        f"\nwith {n} suspended / with 0: p50 ×{pct(during, 50) / pct(baseline, 50):.2f}, "
        f"p99 ×{pct(during, 99) / pct(baseline, 99):.2f}; p50 ratio per round: "
        + ", ".join(f"{r:.2f}" for r in ratios)
    )


if __name__ == "__main__":
    main()
