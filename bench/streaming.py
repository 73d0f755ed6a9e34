"""Streaming: many jobs streaming output at once, each watched by several clients.

Issue 14, item 4: 100 jobs each streaming 100 `output` events a second, each
watched by 10 WebSocket clients (on `job:<id>`, from seq 0), plus 100 clients on
`jobs`: every event delivered once and in order, p99 from the event's `ts` to its
receipt under 100 ms. The streams are real agent jobs (bench/stream_agents.py, on a
threads-pool worker, one thread per job) that start together once every client is
subscribed. The baseline, measured in the same run on the same Redis, is the same
number of events of the same size on bare Redis PUBLISH → SUBSCRIBE, with the same
fan-out (10 connections per channel, 100 on every channel). The clients
(bench/streaming_client.py) are the same asyncio processes for both, up to 600
sockets each (one process could not read the full shape's 100,000 frames a second).

    python -m bench.streaming [--quick]      (or python -m bench --only streaming)

`--quick`: 10 jobs, 10 watchers each, 10 clients on `jobs`, 5 s; `--jobs N`: N jobs
and N clients on `jobs`. `BENCH_PYSPY=1` prints where the web process is every 3 s.
The clients read with minimal protocol readers on both sides (bench/ws_reader.py for
WebSockets, a RESP reader for Redis), so neither pays a client library's cost per
frame; the WebSocket ones offer permessage-deflate, as browsers do, and the server
declines it (webapp/ws.py: one frame's bytes serve every client). Where a stream's
bytes wait is reported too: in the clients' receive queues or the server's send queues.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import psutil
import redis

from bench.report import Figure, table
from bench.socket_queues import QueueBytes, QueueWatch
from bench.streaming_client import pct
from launcher.commands import REPO_ROOT, WORKER_READY, worker_argv
from launcher.processes import ManagedProcess
from tests.support import Platform, WebService, http, start_platform
from tests.support.services import Service
from workers.envelope import read_ts
from workers.settings import get_settings

AGENTS = "bench.stream_agents"
RATE = 100.0  # output events a second per job
P99_FLOOR_MS = 100.0
CLIENTS_PER_PROCESS = 600
DRAIN = 120.0  # s past the streams' end before the clients give up (a loaded machine lags)


@dataclass(frozen=True)
class Shape:
    jobs: int
    watchers: int  # sockets per job
    topic_clients: int  # sockets on `jobs`
    seconds: float

    @property
    def name(self) -> str:
        return (
            f"streaming {self.jobs} jobs × {RATE:.0f}/s, {self.watchers} watchers each"
            f" + {self.topic_clients} on jobs"
        )

    @property
    def clients(self) -> int:
        return self.jobs * self.watchers + self.topic_clients


FULL = Shape(jobs=100, watchers=10, topic_clients=100, seconds=10)
QUICK = Shape(jobs=10, watchers=10, topic_clients=10, seconds=5)


class ThreadsWorker(Service):
    """The platform's worker with a threads pool: one thread per streaming job."""

    def __init__(self, platform: Platform, concurrency: int) -> None:
        name = f"stream-{uuid.uuid4().hex[:8]}"
        argv = worker_argv(
            concurrency=concurrency, hostname=f"{name}@bench", extra=["-P", "threads"]
        )
        super().__init__(
            ManagedProcess(
                name,
                argv,
                env=platform.env(AGENTDECK_AGENT_MODULES=AGENTS),
                cwd=REPO_ROOT,
                log_path=platform.output_dir / f"{name}.log",
            )
        )

    def wait_ready(self, timeout: float) -> None:
        self.proc.wait_for_line(WORKER_READY, timeout)


def _client(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "bench.streaming_client", *args],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )


def processes_for(shape: Shape) -> int:
    """Client processes: one asyncio process reads at most about a core's worth of frames
    (the bare-Redis baseline alone held one near a core at 1,100 sockets, p99 650 ms), so
    the sockets are spread over several, as bench/broadcast.py does."""
    return max(1, min(shape.jobs, math.ceil(shape.clients / CLIENTS_PER_PROCESS)))


class Clients:
    """The clients of one measurement, spread over a few processes: process i watches
    every k-th job (or channel) and holds its share of the `jobs` clients."""

    def __init__(self, argvs: list[list[str]], env: dict[str, str]) -> None:
        self.procs = [_client(argv, env) for argv in argvs]

    def wait_ready(self) -> None:
        for proc in self.procs:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if line.strip() != "ready":
                raise RuntimeError(f"the clients did not get ready: {line!r}")

    def result(self, timeout: float) -> dict[str, Any]:
        """What every process counted, added up; the percentiles of all latencies."""
        deadline = time.monotonic() + timeout
        parts = []
        for proc in self.procs:
            out, _ = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
            parts.append(json.loads(out.strip().splitlines()[-1]))
        total: dict[str, Any] = {}
        hist: dict[str, int] = {}
        for part in parts:
            for key, value in part.items():
                if key == "latency_ms":
                    for ms, n in value.items():
                        hist[ms] = hist.get(ms, 0) + n
                elif key in ("failed", "unsubscribed_why"):
                    merged = total.setdefault(key, {})
                    for why, n in value.items():
                        merged[why] = merged.get(why, 0) + n
                elif key == "max_ms":
                    total[key] = max(total.get(key, value), value)
                else:
                    total[key] = total.get(key, 0) + value
        total["processes"] = len(parts)
        total["p50_ms"] = pct(hist, 50)
        total["p99_ms"] = pct(hist, 99)
        return total


def _shares(n: int, k: int) -> list[int]:
    """`n` split into `k` near-equal counts."""
    return [n // k + (1 if i < n % k else 0) for i in range(k)]


def _spy(web: WebService, seconds: float) -> None:
    """BENCH_PYSPY=1: where the web process is, every 3 s while the clients subscribe and
    the streams run (py-spy dump of gunicorn's worker)."""
    assert web.pid is not None
    child = psutil.Process(web.pid).children()[0].pid
    for _ in range(int(seconds / 3)):
        time.sleep(3)
        print(f"---- py-spy {time.strftime('%X')}", flush=True)
        subprocess.run(["py-spy", "dump", "--pid", str(child)], check=False)


def _runqueue_seconds(pid: int) -> float:
    """Seconds the process's threads waited, runnable, for a CPU (Linux schedstat): how
    much of the machine the process could not get."""
    total = 0
    for p in [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]:
        try:
            for t in os.listdir(f"/proc/{p.pid}/task"):
                with open(f"/proc/{p.pid}/task/{t}/schedstat") as f:
                    total += int(f.read().split()[1])
        except OSError:
            pass
    return total / 1e9


def metric_le(web: WebService, histogram: str, p: float) -> float:
    """The upper bound (s) of the /metrics bucket of `histogram` that holds its p-th
    percentile (one web process)."""
    text = http.get(f"{web.url}/metrics").text
    buckets: list[tuple[float, float]] = []
    for line in text.splitlines():
        if line.startswith(histogram + "_bucket"):
            le = line.split('le="')[1].split('"')[0]
            buckets.append((float(le), float(line.rsplit(" ", 1)[1])))
    total = buckets[-1][1] if buckets else 0.0
    for le, count in buckets:
        if total and count >= total * p / 100:
            return le
    return float("nan")


# ts → the hub's listener (webapp/monitor/latency.py): the lag before the fan-out.
HUB_LAG = "agentdeck_event_delivery_latency_seconds"
# The hub's fan-out of a burst: read from Redis → every frame written (webapp/hub.py).
FANOUT = "agentdeck_ws_fanout_seconds"


class ChannelLag:
    """A bare subscriber on the events channel beside the hub: `ts` → Redis delivery, to
    tell a lag before the web process from one in it."""

    def __init__(self, url: str, channel: str) -> None:
        self.lags: list[float] = []
        self._stop = threading.Event()
        self._pubsub = redis.Redis.from_url(url).pubsub(ignore_subscribe_messages=True)
        self._pubsub.subscribe(channel)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            msg = self._pubsub.get_message(timeout=0.5)
            if msg is None:
                continue
            now = time.time()
            for line in msg["data"].split(b"\n"):
                self.lags.append((now - read_ts(line.decode())) * 1000)

    def stop(self) -> list[float]:
        self._stop.set()
        self._thread.join(5)
        self._pubsub.close()
        return self.lags


def _cpu_seconds(pid: int) -> float:
    root = psutil.Process(pid)
    total = 0.0
    for p in [root, *root.children(recursive=True)]:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def redis_baseline(platform: Platform, shape: Shape) -> dict[str, Any]:
    env = platform.env()
    timeout = shape.seconds + DRAIN
    k = processes_for(shape)
    argvs = []
    for i, topic in enumerate(_shares(shape.topic_clients, k)):
        first, last = shape.jobs * i // k, shape.jobs * (i + 1) // k
        argvs.append(
            ["redis", platform.redis_url, str(first), str(last), str(shape.watchers)]
            + [str(topic), str(timeout)]
        )
    clients = Clients(argvs, env)
    clients.wait_ready()
    queues = QueueWatch(urlsplit(platform.redis_url).port or 6379)
    start_at = time.time() + 0.5
    publisher = subprocess.Popen(
        [sys.executable, "-m", "bench.streaming_client", "publish", platform.redis_url]
        + [str(shape.jobs), str(RATE), str(shape.seconds), str(start_at)],
        cwd=REPO_ROOT,
        env=env,
    )
    try:
        publisher.wait(timeout)
    except subprocess.TimeoutExpired:
        # Behind on a saturated machine: what is not published counts as not delivered.
        print(f"  the baseline's publisher was still at it after {timeout:.0f} s", flush=True)
        publisher.kill()
        publisher.wait()
    result = clients.result(timeout)
    _note_queues(result, queues.stop())
    return result


def _note_queues(result: dict[str, Any], most: QueueBytes) -> None:
    result["server_send_queued_mb"] = most.server_send / 1e6
    result["client_receive_queued_mb"] = most.client_receive / 1e6


def agentdeck(
    platform: Platform, web: WebService, worker: ThreadsWorker, shape: Shape
) -> dict[str, Any]:
    lead = 5.0 + shape.jobs * shape.watchers / 100  # time for every client to subscribe
    start_at = time.time() + lead
    count = int(RATE * shape.seconds)
    ids = []
    for _ in range(shape.jobs):
        body = {"agent": "stream", "input": {"count": count, "rate": RATE, "start_at": start_at}}
        r = http.post(f"{web.url}/api/jobs", json=body)
        r.raise_for_status()
        ids.append(r.json()["id"])
    timeout = lead + shape.seconds + DRAIN
    k = processes_for(shape)
    argvs = [
        ["ws", web.ws_url, platform.admin_token, ",".join(ids), ",".join(ids[i::k])]
        + [str(shape.watchers), str(topic), str(timeout)]
        for i, topic in enumerate(_shares(shape.topic_clients, k))
    ]
    clients = Clients(argvs, platform.env())
    if os.environ.get("BENCH_PYSPY"):
        threading.Thread(target=_spy, args=(web, lead + shape.seconds), daemon=True).start()
    clients.wait_ready()
    late = time.time() - start_at
    if late > 0:
        print(f"  the clients were ready {late:.1f}s after the streams began", flush=True)
    assert web.pid is not None
    assert worker.pid is not None
    lag = ChannelLag(platform.redis_url, get_settings().keys.events_channel)
    queues = QueueWatch(web.port)
    cpu0, wait0, t0 = _cpu_seconds(web.pid), _runqueue_seconds(web.pid), time.monotonic()
    worker_cpu0 = _cpu_seconds(worker.pid)
    time.sleep(max(0.0, start_at - time.time()) + shape.seconds)
    wall = time.monotonic() - t0
    cpu = (_cpu_seconds(web.pid) - cpu0) / wall
    waited = (_runqueue_seconds(web.pid) - wait0) / wall
    worker_cores = (_cpu_seconds(worker.pid) - worker_cpu0) / wall
    result = clients.result(timeout)
    _note_queues(result, queues.stop())
    result["web_cores"] = cpu
    result["web_runqueue_wait"] = waited
    result["worker_cores"] = worker_cores
    lags = sorted(lag.stop())
    result["redis_p50_ms"] = lags[len(lags) // 2] if lags else float("nan")
    result["redis_p99_ms"] = lags[int(len(lags) * 0.99)] if lags else float("nan")
    result["hub_p50_le_ms"] = metric_le(web, HUB_LAG, 50) * 1000
    result["hub_p99_le_ms"] = metric_le(web, HUB_LAG, 99) * 1000
    result["fanout_p99_le_ms"] = metric_le(web, FANOUT, 99) * 1000
    result["expected_job_events"] = shape.watchers * shape.jobs * count
    return result


def measure(shape: Shape) -> tuple[dict[str, Any], dict[str, Any]]:
    platform = start_platform()
    os.environ.update(platform.exported)  # this process's requests carry the admin token
    worker = ThreadsWorker(platform, concurrency=shape.jobs + 2)
    web = WebService(platform, extra_env={"AGENTDECK_AGENT_MODULES": AGENTS})
    try:
        worker.start()
        web.start()
        base = redis_baseline(platform, shape)
        print(f"  baseline: {base}", flush=True)
        ours = agentdeck(platform, web, worker, shape)
        print(f"  agentdeck: {ours}", flush=True)
        return ours, base
    finally:
        web.stop()
        worker.stop()
        platform.close()


def _faults(r: dict[str, Any]) -> int:
    return int(
        r["duplicated"]
        + r["out_of_order"]
        + r["missing"]
        + r["unfinished"]
        + r["failed_clients"]
        + r.get("unsubscribed", 0)
    )


# (figure, result key, unit, baseline's name): figures with the baseline's beside them.
BESIDE_THE_BASELINE = [
    ("p50 event ts → receipt", "p50_ms", "ms", "bare Redis PUBLISH→SUBSCRIBE, same fan-out"),
    ("events delivered", "delivered", "events", "bare Redis"),
    (
        "most bytes waiting in the clients' receive queues",
        "client_receive_queued_mb",
        "MB",
        "bare Redis (its subscribers')",
    ),
    (
        "most bytes waiting in the server's send queues",
        "server_send_queued_mb",
        "MB",
        "bare Redis (its own)",
    ),
]


def figures(quick: bool) -> list[Figure]:
    return figures_of(QUICK if quick else FULL)


def figures_of(shape: Shape) -> list[Figure]:
    ours, base = measure(shape)
    ok_order = _faults(ours) == 0
    return [
        Figure(
            name=f"{shape.name}: p99 event ts → receipt",
            value=ours["p99_ms"],
            unit="ms",
            baseline=base["p99_ms"],
            baseline_name="bare Redis PUBLISH→SUBSCRIBE, same fan-out",
            floor=f"< {P99_FLOOR_MS:.0f} ms, every event once, in order",
            ok=ours["p99_ms"] < P99_FLOOR_MS and ok_order,
        ),
        *(
            Figure(
                name=f"{shape.name}: {what}",
                value=ours[key],
                unit=unit,
                baseline=base[key],
                baseline_name=versus,
            )
            for what, key, unit, versus in BESIDE_THE_BASELINE
        ),
        Figure(
            name=f"{shape.name}: duplicated + out of order + missing + clients cut off",
            value=_faults(ours),
            unit="",
            baseline=_faults(base),
            baseline_name="bare Redis",
            floor="0: every event once, in order",
            ok=_faults(ours) == 0,
        ),
        Figure(
            name=f"{shape.name}: client processes CPU", value=ours["client_cores"], unit="cores"
        ),
        Figure(
            name=f"{shape.name}: ts → the hub, p50 / p99 at most (/metrics buckets)",
            value=ours["hub_p50_le_ms"],
            unit=f"/ {ours['hub_p99_le_ms']:.0f} ms",
        ),
        Figure(
            name=f"{shape.name}: the hub's fan-out of a burst, p99 at most (/metrics buckets)",
            value=ours["fanout_p99_le_ms"],
            unit="ms",
        ),
        Figure(
            name=f"{shape.name}: ts → a bare subscriber of the events channel, p50 / p99",
            value=ours["redis_p50_ms"],
            unit=f"/ {ours['redis_p99_ms']:.1f} ms",
        ),
        Figure(name=f"{shape.name}: web process CPU", value=ours["web_cores"], unit="cores"),
        Figure(name=f"{shape.name}: worker process CPU", value=ours["worker_cores"], unit="cores"),
        Figure(
            name=f"{shape.name}: web process waiting for a CPU (runnable, not running)",
            value=ours["web_runqueue_wait"],
            unit="thread-s/s",
        ),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--jobs", type=int, help="this many streaming jobs (and clients on jobs)")
    args = ap.parse_args()
    shape = QUICK if args.quick else FULL
    if args.jobs:
        shape = Shape(args.jobs, shape.watchers, args.jobs, shape.seconds)
    print(table(figures_of(shape)))


if __name__ == "__main__":
    main()
