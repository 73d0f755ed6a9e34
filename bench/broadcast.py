"""Broadcast: N clients on `jobs`, Agentdeck's web process against the floor, in one run.

    python -m bench.broadcast [--quick] [--deflate]

The web process runs as deployed (gunicorn, gevent: `launcher.commands.web_argv`);
the floor is `bench/floor_server.py` (asyncio `websockets.broadcast`). The same
~300-byte `job.started` envelopes are PUBLISHed on each server's channel at a
steady rate and received by the same client processes (`bench/broadcast_client.py`).
Figures: server CPU per delivery (the server process's CPU time / deliveries,
from psutil), messages lost (must be 0) and, for Agentdeck, the hub's fan-out
time p99 (message in → last client's bytes written, from /metrics). `--deflate`
has the clients offer permessage-deflate, as browsers do.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil
import redis
import requests

from bench.report import Figure, table
from launcher.commands import REPO_ROOT, child_env, web_argv
from launcher.migrate import upgrade
from launcher.net import free_port, http_ok, wait_until
from launcher.processes import ManagedProcess
from workers.envelope import Event
from workers.keys import Keys

REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
CLIENTS_PER_PROCESS = 1_250


def envelope(n: int) -> str:
    """A ~300-byte job.started envelope, as a worker publishes it."""
    data = {
        "agent": "echo",
        "queue": "celery",
        "worker": "celery@bench-host-1",
        "task_id": str(uuid.uuid4()),
        "params": {"text": "summarise the latest report", "steps": 3},
        "root": str(uuid.uuid4()),
    }
    return Event(f"b{n:07d}", 1, "job.started", time.time(), "STARTED", data).encode()


def deflate_costs(rounds: int = 20_000) -> tuple[float, float, float, float]:
    """What permessage-deflate would cost: µs to compress a frame for one client with
    context takeover (what a browser's offer asks for by default), µs to compress it once
    without, the KB of memory a client's compressor holds, and compressed / plain size."""
    plain = envelope(1).encode()
    proc = psutil.Process()
    before = proc.memory_info().rss
    contexts = []
    for _ in range(1000):
        c = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
        c.compress(plain)
        c.flush(zlib.Z_SYNC_FLUSH)
        contexts.append(c)
    kb = (proc.memory_info().rss - before) / 1000 / 1024
    c = contexts[0]
    envelopes = [envelope(i).encode() for i in range(rounds)]
    started = time.process_time()
    for e in envelopes:
        c.compress(e)
        c.flush(zlib.Z_SYNC_FLUSH)
    per_client = (time.process_time() - started) / rounds * 1e6
    started = time.process_time()
    size = 0
    for e in envelopes:
        once = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
        size += len(once.compress(e) + once.flush(zlib.Z_SYNC_FLUSH))
    once_us = (time.process_time() - started) / rounds * 1e6
    return per_client, once_us, kb, size / sum(map(len, envelopes))


@dataclass
class Server:
    name: str
    ws_url: str
    channel: str
    pid: int  # the process that serves the sockets (gunicorn's worker for Agentdeck)
    base_url: str = ""  # Agentdeck's HTTP base, for /metrics
    token: str = ""

    @property
    def agentdeck(self) -> bool:
        return bool(self.token)

    def rss(self) -> int:
        """Resident memory of the server's processes (gunicorn's master too)."""
        proc = psutil.Process(self.pid)
        procs = [proc, *([proc.parent()] if self.agentdeck and proc.parent() else [])]
        return sum(p.memory_info().rss for p in procs if p is not None)


@contextmanager
def agentdeck_server(extra_env: dict[str, str] | None = None) -> Iterator[Server]:
    work = Path(tempfile.mkdtemp(prefix="agentdeck-bcast-"))
    url = f"sqlite:///{work / 'agentdeck.db'}"
    upgrade(url)
    port = free_port()
    token = "bench-" + uuid.uuid4().hex
    prefix = f"agentdeck-bcast-{uuid.uuid4().hex[:6]}:"
    env = child_env(
        os.environ,
        {
            "DATABASE_URL": url,
            "AGENTDECK_DATA_DIR": str(work),
            "AGENTDECK_KEY_PREFIX": prefix,
            "REDIS_URL": REDIS_URL,
            "AGENTDECK_ADMIN_TOKEN": token,
            **(extra_env or {}),
        },
    )
    argv = web_argv(host="127.0.0.1", port=port)
    web = ManagedProcess("web", argv, env=env, cwd=REPO_ROOT, log_path=work / "web.log")
    web.start()
    base = f"http://127.0.0.1:{port}"
    try:
        if not wait_until(lambda: http_ok(base + "/healthz"), 60, interval=0.1):
            raise RuntimeError(f"the web did not start:\n{web.tail()}")
        assert web.pid is not None
        worker = psutil.Process(web.pid).children()[0]
        channel = Keys(prefix).events_channel
        yield Server("agentdeck", f"ws://127.0.0.1:{port}/ws", channel, worker.pid, base, token)
    finally:
        web.stop(10)
        shutil.rmtree(work, ignore_errors=True)


@contextmanager
def floor_server() -> Iterator[Server]:
    port = free_port()
    channel = f"bench-floor-{uuid.uuid4().hex[:8]}"
    argv = [sys.executable, "-m", "bench.floor_server", "--port", str(port)]
    argv += ["--redis", REDIS_URL, "--channel", channel]
    proc = subprocess.Popen(argv, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "floor ready":
            raise RuntimeError("the floor server did not start")
        yield Server("floor", f"ws://127.0.0.1:{port}", channel, proc.pid)
    finally:
        proc.terminate()
        proc.wait(10)


class Clients:
    """N listening clients spread over a few processes."""

    def __init__(self, server: Server, n: int, deflate: bool = False) -> None:
        self.procs: list[subprocess.Popen[str]] = []
        per = math.ceil(n / math.ceil(n / CLIENTS_PER_PROCESS))
        for start in range(0, n, per):
            argv = [sys.executable, "-m", "bench.broadcast_client", server.ws_url]
            argv.append(str(min(per, n - start)))
            if server.agentdeck:
                argv += ["--subscribe", "--token", server.token]
            if deflate:
                argv.append("--deflate")
            self.procs.append(
                subprocess.Popen(
                    argv, cwd=REPO_ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
                )
            )
        for proc in self.procs:
            assert proc.stdout is not None
            line = proc.stdout.readline().strip()
            if line != "ready":
                raise RuntimeError(f"a client process did not connect: {line!r}")

    def report(self) -> tuple[list[int], int]:
        counts: list[int] = []
        disordered = 0
        for proc in self.procs:
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write("report\n")
            proc.stdin.flush()
            got = json.loads(proc.stdout.readline())
            counts += got["counts"]
            disordered += got["disordered"]
        return counts, disordered

    def close(self) -> None:
        for proc in self.procs:
            assert proc.stdin is not None
            try:
                proc.stdin.write("quit\n")
                proc.stdin.flush()
            except OSError:
                pass
        for proc in self.procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


def fanout_buckets(server: Server, name: str = "agentdeck_ws_fanout_seconds") -> dict[float, float]:
    """A hub's fan-out histogram from /metrics: upper bound (s) -> cumulative count."""
    r = requests.get(
        server.base_url + "/metrics",
        headers={"Authorization": f"Bearer {server.token}"},
        timeout=30,
    )
    r.raise_for_status()
    out: dict[float, float] = {}
    for line in r.text.splitlines():
        if line.startswith(name + "_bucket{"):  # one web process here
            le = line.split('le="', 1)[1].split('"', 1)[0]
            out[math.inf if le == "+Inf" else float(le)] = float(line.rsplit(" ", 1)[1])
    return out


def p99(before: dict[float, float], after: dict[float, float]) -> float | None:
    """The bucket bound under which 99% of the fan-outs between two scrapes fell."""
    diff = sorted((le, after[le] - before.get(le, 0.0)) for le in after)
    if not diff or diff[-1][1] <= 0:
        return None
    total = diff[-1][1]
    for le, cumulative in diff:
        if cumulative >= 0.99 * total:
            return le
    return None


@dataclass
class Run:
    cpu_us: float  # server CPU per delivery
    system_us: float  # the part of it in the kernel (send calls)
    lost: int
    disordered: int
    fanout_p99_ms: float | None
    fanout_cpu_p99_ms: float | None  # the CPU time of it (the machine is shared)
    deliveries: int


def broadcast(server: Server, n: int, rate: float, seconds: float, deflate: bool = False) -> Run:
    clients = Clients(server, n, deflate)
    r = redis.Redis.from_url(REDIS_URL)
    try:
        proc = psutil.Process(server.pid)
        before = fanout_buckets(server) if server.agentdeck else {}
        cpu_name = "agentdeck_ws_fanout_cpu_seconds"
        before_cpu = fanout_buckets(server, cpu_name) if server.agentdeck else {}
        total = int(rate * seconds)
        t0 = proc.cpu_times()
        start = time.monotonic()
        base = int(time.time() * 10) % 1_000_000 * 1000  # increasing across runs
        for k in range(total):
            delay = start + k / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            r.publish(server.channel, envelope(base + k))
        want = n * total
        got: list[int] = []
        disordered = 0

        def delivered() -> bool:
            nonlocal got, disordered
            got, disordered = clients.report()
            return sum(got) >= want

        wait_until(delivered, 60, interval=0.25)
        t1 = proc.cpu_times()
        cpu = t1.user + t1.system - t0.user - t0.system
        system = t1.system - t0.system
        after = fanout_buckets(server) if server.agentdeck else {}
        fan = p99(before, after) if server.agentdeck else None
        after_cpu = fanout_buckets(server, cpu_name) if server.agentdeck else {}
        fan_cpu = p99(before_cpu, after_cpu) if server.agentdeck else None
        deliveries = sum(got)
        return Run(
            cpu_us=cpu / max(deliveries, 1) * 1e6,
            system_us=system / max(deliveries, 1) * 1e6,
            lost=want - deliveries,
            disordered=disordered,
            fanout_p99_ms=fan * 1000 if fan is not None else None,
            fanout_cpu_p99_ms=fan_cpu * 1000 if fan_cpu is not None else None,
            deliveries=deliveries,
        )
    finally:
        clients.close()
        r.close()


CASES_FULL = [(1_000, 20.0, 30.0), (5_000, 4.0, 40.0)]
CASES_QUICK = [(200, 20.0, 8.0)]
if os.environ.get("BENCH_CASES"):  # e.g. "1000:20:10,5000:4:10", for trying one size
    CASES_FULL = [
        (int(n), float(r), float(s))
        for n, r, s in (c.split(":") for c in os.environ["BENCH_CASES"].split(","))
    ]


def figures(quick: bool, deflate: bool = False) -> list[Figure]:
    out: list[Figure] = []
    offer = " (deflate offered)" if deflate else ""
    with agentdeck_server() as ours, floor_server() as floor:
        for n, rate, seconds in CASES_QUICK if quick else CASES_FULL:
            base = broadcast(floor, n, rate, seconds, deflate)
            mine = broadcast(ours, n, rate, seconds, deflate)
            label = f"broadcast N={n:,} @{rate:g}/s{offer}"
            print(f"{label}: agentdeck {mine}, floor {base}", flush=True)
            out += [
                Figure(
                    f"{label}: server CPU per delivery",
                    mine.cpu_us,
                    "µs",
                    base.cpu_us,
                    "floor: asyncio websockets.broadcast",
                    "≤ 0.5 × floor",
                    mine.cpu_us <= 0.5 * base.cpu_us,
                ),
                Figure(
                    f"{label}: messages lost / out of order",
                    mine.lost + mine.disordered,
                    "",
                    base.lost + base.disordered,
                    "floor",
                    "0",
                    mine.lost == 0 and mine.disordered == 0,
                ),
                Figure(
                    f"{label}: hub fan-out p99 (bucket bound)",
                    mine.fanout_p99_ms if mine.fanout_p99_ms is not None else math.nan,
                    "ms",
                    floor="≤ 10 ms",
                    ok=mine.fanout_p99_ms is not None and mine.fanout_p99_ms <= 10,
                ),
                Figure(
                    f"{label}: hub fan-out CPU time p99 (bucket bound)",
                    mine.fanout_cpu_p99_ms if mine.fanout_cpu_p99_ms is not None else math.nan,
                    "ms",
                ),
                Figure(
                    f"{label}: server CPU per delivery in the kernel",
                    mine.system_us,
                    "µs",
                    base.system_us,
                    "floor: asyncio websockets.broadcast",
                ),
            ]
    per_client, once, kb, ratio = deflate_costs(2_000 if quick else 20_000)
    out += [
        Figure(
            "permessage-deflate, per client with context takeover: CPU a frame", per_client, "µs"
        ),
        Figure("permessage-deflate, once without context takeover: CPU a message", once, "µs"),
        Figure("permessage-deflate: memory of a client's compressor", kb, "KB"),
        Figure("permessage-deflate: compressed / plain size of an envelope", ratio, "×"),
    ]
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--deflate", action="store_true", help="clients offer permessage-deflate")
    args = ap.parse_args()
    print(table(figures(args.quick, args.deflate)))
