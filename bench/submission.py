"""Submission speed of one web process: sequential latency, concurrent and bulk jobs/s.

Starts an isolated platform (embedded Valkey or REDIS_URL; SQLite, then a fresh
database on PostgreSQL; a Celery worker of 2 processes; one gunicorn gevent
web process, as the launcher runs it) and measures, with a lean keep-alive HTTP client:

- sequential `POST /api/jobs` p50/p99, beside `GET /healthz` measured in the
  same run, interleaved one for one (the baseline: what any request costs);
- jobs/s accepted from `--jobs` echo jobs sent by `--concurrency` clients at
  once while `--watchers` WebSockets follow the `jobs` topic, beside
  `GET /healthz` requests/s at the same concurrency;
- jobs/s accepted through `POST /api/jobs/bulk` (lists of `--bulk-size`);

and the web process's CPU time per accepted job in each phase (on a shared,
busy machine the rates follow the CPU share the web process gets; its CPU per
job does not), then that nothing was lost: every accepted job reaches a final
state in SQL (the worker runs them all; bounded wait). The echo jobs are
`{"text": "hi", "steps": 0, "delay": 0}` so that the worker drains them soon.

    python -m bench.submission [--quick] [--jobs 1000] [--sql sqlite,postgresql]
                               [--profile DIR]   (py-spy of the web process per phase;
                                                  needs `pip install py-spy`)
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil
import websocket
from sqlalchemy import func, select

from bench.report import Figure
from tests.support import Platform, WebService, WorkerService, start_platform, wait_until
from tests.support.http import auth_headers
from workers.events import FINAL_STATES
from workers.models import Job, make_engine

POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
ECHO = {"agent": "echo", "input": {"text": "hi", "steps": 0, "delay": 0}}


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


class HttpConn:
    """One keep-alive HTTP/1.1 connection, as lean as a client gets: the figures are
    the server's, not a client library's."""

    def __init__(self, base_url: str, token: str) -> None:
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.auth = f"Authorization: Bearer {token}\r\n" if token else ""
        self.sock = socket.create_connection((self.host, self.port), timeout=30)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, bytes]:
        data = b"" if body is None else json.dumps(body).encode()
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n{self.auth}"
            + (f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n" if data else "")
            + "\r\n"
        )
        self.sock.sendall(head.encode() + data)
        while b"\r\n\r\n" not in self.buf:
            self._more()
        raw_head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = raw_head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.lower() == "content-length":
                length = int(value)
        while len(self.buf) < length:
            self._more()
        payload, self.buf = self.buf[:length], self.buf[length:]
        return status, payload

    def _more(self) -> None:
        chunk = self.sock.recv(1 << 16)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        self.buf += chunk

    def close(self) -> None:
        self.sock.close()


@dataclass
class Watchers:
    """WebSockets on the `jobs` topic, each read by a thread of its own."""

    url: str
    n: int
    events: list[int] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def __enter__(self) -> Watchers:
        url = self.url.replace("http://", "ws://", 1) + "/ws"
        for i in range(self.n):
            # No UTF-8 check of each frame (websocket-client's is pure Python): the
            # watchers share this process with the load generator, which must not starve.
            conn = websocket.create_connection(
                url, timeout=10, header=auth_headers(None), skip_utf8_validation=True
            )
            conn.send(json.dumps({"op": "subscribe", "topic": "jobs"}))
            while json.loads(conn.recv()).get("type") != "subscribed":
                pass
            self.events.append(0)
            t = threading.Thread(target=self._read, args=(conn, i), daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def _read(self, conn: websocket.WebSocket, i: int) -> None:
        conn.settimeout(0.2)
        try:
            while not self._stop.is_set():
                try:
                    _, data = conn.recv_data()
                except (TimeoutError, websocket.WebSocketTimeoutException):
                    continue
                except Exception:
                    if not self._stop.is_set():
                        raise
                    return
                self.events[i] += data.count(b'"seq":')  # events, without decoding them
        finally:
            conn.close()

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(5)


@dataclass
class Run:
    """What one phase accepted: ids, and how long it took."""

    ids: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    answered: int = 0  # requests answered with a 2xx
    web_cpu: float = 0.0  # CPU seconds of the web process meanwhile

    @property
    def cpu_ms_per_job(self) -> float:
        return 1000 * self.web_cpu / len(self.ids) if self.ids else 0.0

    @property
    def rate(self) -> float:
        return len(self.ids) / self.seconds if self.seconds else 0.0

    @property
    def requests_rate(self) -> float:
        return self.answered / self.seconds if self.seconds else 0.0


def sequential(url: str, token: str, n: int) -> tuple[list[float], list[float], Run]:
    """ms of n POST /api/jobs and n GET /healthz, interleaved on one connection."""
    conn = HttpConn(url, token)
    posts, gets, run = [], [], Run()
    try:
        for _ in range(n):
            t0 = time.perf_counter()
            status, body = conn.request("POST", "/api/jobs", ECHO)
            posts.append((time.perf_counter() - t0) * 1000)
            if status != 202:
                raise RuntimeError(f"POST /api/jobs: {status} {body[:300]!r}")
            run.ids.append(json.loads(body)["id"])
            t0 = time.perf_counter()
            status, _ = conn.request("GET", "/healthz")
            gets.append((time.perf_counter() - t0) * 1000)
    finally:
        conn.close()
    return posts, gets, run


def concurrently(
    url: str, token: str, n: int, concurrency: int, method: str, path: str, body: Any
) -> Run:
    """n requests from `concurrency` connections at once; the ids of accepted jobs."""
    left = iter(range(n))
    lock = threading.Lock()
    run = Run()
    conns = [HttpConn(url, token) for _ in range(concurrency)]

    def client(conn: HttpConn) -> None:
        while True:
            with lock:
                if next(left, None) is None:
                    return
            status, payload = conn.request(method, path, body)
            with lock:
                if status < 300:
                    run.answered += 1
                if status == 202 and body is not None:
                    run.ids.append(json.loads(payload)["id"])
                elif status >= 300:
                    run.errors.append(f"{status} {payload[:200]!r}")

    threads = [threading.Thread(target=client, args=(c,)) for c in conns]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    run.seconds = time.perf_counter() - t0
    for c in conns:
        c.close()
    return run


def bulk(url: str, token: str, n: int, size: int, concurrency: int) -> Run:
    """n echo jobs in lists of `size` through POST /api/jobs/bulk."""
    batches = [min(size, n - start) for start in range(0, n, size)]
    left = iter(batches)
    lock = threading.Lock()
    run = Run()

    def client() -> None:
        conn = HttpConn(url, token)
        try:
            while True:
                with lock:
                    k = next(left, None)
                if k is None:
                    return
                status, payload = conn.request("POST", "/api/jobs/bulk", {"jobs": [ECHO] * k})
                with lock:
                    if status != 200:
                        run.errors.append(f"{status} {payload[:200]!r}")
                        continue
                    for item in json.loads(payload)["results"]:
                        if "id" in item:
                            run.ids.append(item["id"])
                        else:
                            run.errors.append(str(item.get("error")))
        finally:
            conn.close()

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    run.seconds = time.perf_counter() - t0
    return run


def all_recorded(database_url: str, ids: list[str], timeout: float) -> int:
    """How many of `ids` are in SQL in a final state, once all are or at `timeout`."""
    engine = make_engine(database_url)
    finals = [s.value for s in FINAL_STATES]
    unique = list(set(ids))
    done = 0

    def count() -> bool:
        nonlocal done
        done = 0
        with engine.connect() as conn:
            for start in range(0, len(unique), 500):
                chunk = unique[start : start + 500]
                query = select(func.count()).where(Job.id.in_(chunk), Job.state.in_(finals))
                done += int(conn.execute(query).scalar_one())
        return done == len(unique)

    try:
        wait_until(count, timeout, interval=0.5)
        return done
    finally:
        engine.dispose()


@dataclass
class Measured:
    sql: str
    post_ms: list[float]
    get_ms: list[float]
    concurrent: Run
    healthz: Run
    bulk: Run
    accepted: int
    recorded: int
    watcher_events: int


@contextmanager
def platform_on(sql: str) -> Iterator[tuple[Platform, WebService]]:
    """A platform of its own on `sql`; this process's environment is as it was after."""
    saved = dict(os.environ)
    env = {k: v for k, v in saved.items() if k != "DATABASE_URL"}
    if sql == "postgresql":
        env["DATABASE_URL"] = saved.get("BENCH_POSTGRES_URL", POSTGRES_URL)
    platform = start_platform(env)
    os.environ.update(platform.exported)  # the WebSocket clients send the admin token
    worker, web = WorkerService(platform), WebService(platform)
    # As the launcher runs it: without the tests' access log (a line per request).
    argv = web.proc.argv
    at = argv.index("--access-logfile")
    del argv[at : at + 2]
    try:
        worker.start()
        web.start()
        yield platform, web
    finally:
        web.stop()
        worker.stop()
        platform.close()
        os.environ.clear()
        os.environ.update(saved)


def web_worker(web: WebService) -> psutil.Process:
    """gunicorn's worker process (the web process proper; its master only watches it)."""
    return psutil.Process(web.pid).children()[0]


@contextmanager
def cpu_of(web: WebService) -> Iterator[list[float]]:
    """[CPU seconds the web process spent within the block], filled in at its end."""
    proc = web_worker(web)
    before = proc.cpu_times()
    got = [0.0]
    yield got
    after = proc.cpu_times()
    got[0] = (after.user + after.system) - (before.user + before.system)


@contextmanager
def profiled(web: WebService, out_dir: str | None, name: str) -> Iterator[None]:
    """With `out_dir`, py-spy samples the web process (gunicorn's worker) meanwhile."""
    if not out_dir:
        yield
        return
    worker = web_worker(web).pid
    path = Path(out_dir) / f"{name}.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    argv = ["py-spy", "record", "-p", str(worker), "-o", str(path), "-f", "raw", "-r", "200"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1)  # py-spy attaches
    try:
        yield
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)


def measure(
    sql: str,
    jobs: int,
    concurrency: int,
    watchers: int,
    bulk_size: int,
    profile: str | None = None,
) -> Measured:
    with platform_on(sql) as (platform, web):
        token = platform.admin_token
        sequential(web.url, token, 20)  # warm up: imports, connections, caches
        with profiled(web, profile, f"{sql}-sequential"):
            posts, gets, seq_run = sequential(web.url, token, max(50, jobs // 5))
        with Watchers(web.url, watchers) as watching:
            with cpu_of(web) as cpu:
                healthz = concurrently(web.url, token, jobs, concurrency, "GET", "/healthz", None)
            healthz.web_cpu = cpu[0]
            with profiled(web, profile, f"{sql}-concurrent"), cpu_of(web) as cpu:
                conc = concurrently(web.url, token, jobs, concurrency, "POST", "/api/jobs", ECHO)
            conc.web_cpu = cpu[0]
            with profiled(web, profile, f"{sql}-bulk"), cpu_of(web) as cpu:
                many = bulk(web.url, token, jobs * 5, bulk_size, 2)
            many.web_cpu = cpu[0]
        ids = seq_run.ids + conc.ids + many.ids
        recorded = all_recorded(platform.database_url, ids, timeout=120 + len(ids) / 20)
        return Measured(
            sql,
            posts,
            gets,
            conc,
            healthz,
            many,
            accepted=len(ids),
            recorded=recorded,
            watcher_events=sum(watching.events),
        )


def to_figures(m: Measured) -> list[Figure]:
    lost = m.accepted - m.recorded
    errors = len(m.concurrent.errors) + len(m.bulk.errors)
    nothing_lost = lost == 0 and errors == 0
    figs = []
    if m.sql == "sqlite":
        p50, p99 = pct(m.post_ms, 50), pct(m.post_ms, 99)
        base50, base99 = pct(m.get_ms, 50), pct(m.get_ms, 99)
        figs += [
            Figure(
                "submission: sequential POST /api/jobs p50",
                p50,
                "ms",
                base50,
                "GET /healthz p50",
                "≤ 3 ms",
                p50 <= 3.0,
            ),
            Figure("submission: sequential POST /api/jobs p99", p99, "ms", base99, "GET /healthz"),
        ]
    figs += [
        Figure(
            f"submission ({m.sql}): jobs/s, 20 concurrent, 10 watchers",
            m.concurrent.rate,
            "jobs/s",
            m.healthz.requests_rate,
            "GET /healthz req/s",
            "≥ 500 jobs/s, nothing lost",
            m.concurrent.rate >= 500 and nothing_lost,
        ),
        Figure(
            f"submission ({m.sql}): web CPU per job, 20 concurrent",
            m.concurrent.cpu_ms_per_job,
            "ms",
            1000 * m.healthz.web_cpu / max(m.healthz.answered, 1),
            "GET /healthz, per request",
            "≤ 2 ms (500 jobs/s a core)",
            m.concurrent.cpu_ms_per_job <= 2.0,
        ),
        Figure(
            f"submission ({m.sql}): bulk jobs/s",
            m.bulk.rate,
            "jobs/s",
            m.concurrent.rate,
            "one job a request",
            "≥ 5,000 jobs/s, nothing lost",
            m.bulk.rate >= 5000 and nothing_lost,
        ),
        Figure(
            f"submission ({m.sql}): web CPU per job, bulk",
            m.bulk.cpu_ms_per_job,
            "ms",
            m.concurrent.cpu_ms_per_job,
            "one job a request",
            "≤ 0.2 ms (5,000 jobs/s a core)",
            m.bulk.cpu_ms_per_job <= 0.2,
        ),
        Figure(
            f"submission ({m.sql}): accepted jobs lost",
            float(lost + errors),
            "jobs",
            float(m.accepted),
            "accepted",
            "0",
            nothing_lost,
        ),
    ]
    return figs


def figures(quick: bool) -> list[Figure]:
    jobs = 300 if quick else 1000
    out: list[Figure] = []
    for sql in ("sqlite", "postgresql"):
        out += to_figures(measure(sql, jobs, 20, 10, 500))
    return out


def describe(m: Measured) -> str:
    return "\n".join(
        [
            f"[{m.sql}]",
            f"  sequential POST /api/jobs: p50 {pct(m.post_ms, 50):.2f} ms, "
            f"p99 {pct(m.post_ms, 99):.2f} ms, mean {statistics.mean(m.post_ms):.2f} ms"
            f" (n={len(m.post_ms)})",
            f"  sequential GET /healthz:   p50 {pct(m.get_ms, 50):.2f} ms, "
            f"p99 {pct(m.get_ms, 99):.2f} ms",
            f"  concurrent: {m.concurrent.rate:.0f} jobs/s ({len(m.concurrent.ids)} in "
            f"{m.concurrent.seconds:.2f} s, web CPU {m.concurrent.cpu_ms_per_job:.2f} ms a job), "
            f"GET /healthz {m.healthz.requests_rate:.0f} req/s "
            f"({1000 * m.healthz.web_cpu / max(m.healthz.answered, 1):.2f} ms CPU a request)",
            f"  bulk: {m.bulk.rate:.0f} jobs/s ({len(m.bulk.ids)} in {m.bulk.seconds:.2f} s, "
            f"web CPU {m.bulk.cpu_ms_per_job:.2f} ms a job)",
            f"  errors: {(m.concurrent.errors + m.bulk.errors)[:3]}",
            f"  accepted {m.accepted}, final in SQL {m.recorded}; "
            f"watchers saw {m.watcher_events} events",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="300 jobs instead of 1,000")
    ap.add_argument("--jobs", type=int)
    ap.add_argument("--concurrency", type=int, default=20)
    ap.add_argument("--watchers", type=int, default=10)
    ap.add_argument("--bulk-size", type=int, default=500)
    ap.add_argument("--sql", default="sqlite,postgresql", help="sqlite, postgresql or both")
    ap.add_argument("--profile", metavar="DIR", help="py-spy the web process into DIR")
    args = ap.parse_args(argv)
    jobs = args.jobs or (300 if args.quick else 1000)
    ok = True
    for sql in args.sql.split(","):
        m = measure(sql, jobs, args.concurrency, args.watchers, args.bulk_size, args.profile)
        print(describe(m), flush=True)
        ok = ok and all(f.ok is not False for f in to_figures(m))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
