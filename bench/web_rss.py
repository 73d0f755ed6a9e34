"""Web process memory with 1,000,000 tasks in history.

    python -m bench.web_rss [--tasks 1000000] [--rounds 3] [--keep DIR]

Fills a fresh SQLite history (migrated schema) with N task rows through
`executemany`, starts the web app as deployed (gunicorn, gevent), then hits
the pages, the task lists (first page, deep offset, sorts, searches that scan
every row, Flower's unbounded /api/tasks), counts, types and /metrics. It
samples the RSS of the web process (gunicorn's worker, where the app runs)
every 20 ms and prints the peak; the target is under 200 MB (Flower holds
about 6 KB per task in memory: ~6 GB for this history).

Redis comes from REDIS_URL (default redis://127.0.0.1:6379/0) under a key
prefix of its own.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sqlite3
import tempfile
import threading
import time
import uuid
from pathlib import Path

import psutil
import requests

from launcher.commands import REPO_ROOT, child_env, web_argv
from launcher.migrate import upgrade
from launcher.net import free_port, http_ok, wait_until
from launcher.processes import ManagedProcess

NAMES = [f"proj.tasks.task_{i:02d}" for i in range(20)]
STATES = ["SUCCESS"] * 8 + ["FAILURE", "REVOKED", "STARTED", "PENDING"]
WORKERS = [f"celery@host{i}" for i in range(8)]
BATCH = 50_000


def fill(db: Path, n: int) -> float:
    """Insert n task rows; returns the seconds it took."""
    t0 = time.perf_counter()
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA synchronous=OFF")
    rnd = random.Random(7)
    base = time.time() - n * 0.01
    sql = (
        "INSERT INTO jobs (id, name, state, args, kwargs, result, error, queue, worker, retries,"
        " created_at, received_at, started_at, finished_at, updated_at, last_seq)"
        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
    )
    for start in range(0, n, BATCH):
        rows = []
        for i in range(start, min(n, start + BATCH)):
            state = rnd.choice(STATES)
            created = base + i * 0.01
            started = created + rnd.random() * 0.05
            finished = started + rnd.random() * 2 if state in ("SUCCESS", "FAILURE") else None
            rows.append(
                (
                    str(uuid.UUID(int=rnd.getrandbits(128))),
                    rnd.choice(NAMES),
                    state,
                    f"({i}, 'item-{i % 997}')",
                    f"{{'user': {i % 1000}}}",
                    json.dumps(i * 2) if state == "SUCCESS" else None,
                    "ValueError: bad input" if state == "FAILURE" else None,
                    "celery",
                    rnd.choice(WORKERS),
                    0,
                    created,
                    created + 0.001,
                    started,
                    finished,
                    finished or started,
                    4,
                )
            )
        conn.executemany(sql, rows)
        conn.commit()
    conn.execute("ANALYZE")
    conn.close()
    return time.perf_counter() - t0


class PeakRss:
    """Samples a process's RSS in the background; `.peak` in bytes."""

    def __init__(self, pid: int) -> None:
        self.proc = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            try:
                self.peak = max(self.peak, self.proc.memory_info().rss)
            except psutil.Error:
                return

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def paths(sample_id: str) -> list[str]:
    return [
        "/monitor/",
        "/monitor/tasks",
        "/monitor/workers",
        "/monitor/broker",
        f"/monitor/tasks/{sample_id}",
        "/",
        "/api/tasks?limit=100",
        "/api/tasks?limit=100&offset=900000",
        "/api/tasks?limit=50&sort_by=-received",
        "/api/tasks?limit=50&sort_by=name",
        "/api/tasks?limit=50&sort_by=-runtime",
        "/api/tasks?limit=50&search=args:item-123",
        "/api/tasks?limit=50&search=kwargs:user=7%20state:FAILURE",
        "/api/tasks?limit=50&search=result:4242",
        "/api/tasks?limit=50&search=no-such-text",  # scans every row
        "/api/tasks?workername=celery@host3&limit=50",
        "/api/tasks",  # Flower's unbounded list (capped here)
        "/api/task/types",
        f"/api/task/info/{sample_id}",
        "/api/monitor/tasks?limit=50",
        "/api/monitor/tasks?limit=50&search=state:FAILURE",
        "/api/monitor/tasks?limit=50&search=name:task_07%20args:item-5",
        "/api/monitor/tasks?limit=50&offset=500000&sort_by=started",
        "/api/jobs?limit=50",
        "/api/monitor/workers",
        "/api/monitor/broker",
        "/api/monitor/dashboard?window=3600",
        "/api/queues/length",
        "/metrics",
    ]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--tasks", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--keep", help="a folder to keep the database in (reused if filled)")
    args = ap.parse_args()
    work = Path(args.keep or tempfile.mkdtemp(prefix="agentdeck-rss-"))
    work.mkdir(parents=True, exist_ok=True)
    db = work / "agentdeck.db"
    url = f"sqlite:///{db}"
    if not (args.keep and db.exists()):
        upgrade(url)
        print(f"inserted {args.tasks:,} task rows in {fill(db, args.tasks):.1f} s ({db})")
    print(f"database: {db.stat().st_size / 1e6:.0f} MB on disk")
    sample_id = sqlite3.connect(db).execute("SELECT id FROM jobs LIMIT 1 OFFSET 4242").fetchone()[0]

    port = free_port()
    token = "bench-" + uuid.uuid4().hex
    env = child_env(
        os.environ,
        {
            "DATABASE_URL": url,
            "AGENTDECK_DATA_DIR": str(work),
            "AGENTDECK_KEY_PREFIX": f"agentdeck-rss-{uuid.uuid4().hex[:6]}:",
            "REDIS_URL": os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0",
            "AGENTDECK_ADMIN_TOKEN": token,
        },
    )
    web = ManagedProcess(
        "web", web_argv(host="127.0.0.1", port=port), env=env, cwd=REPO_ROOT,
        log_path=work / "web.log",
    )  # fmt: skip
    web.start()
    base = f"http://127.0.0.1:{port}"
    try:
        if not wait_until(lambda: http_ok(base + "/healthz"), 60, interval=0.1):
            raise RuntimeError(f"the web did not start:\n{web.tail()}")
        master = psutil.Process(web.pid)
        worker = master.children()[0]
        idle = worker.memory_info().rss
        meter = PeakRss(worker.pid)
        session = requests.Session()
        session.trust_env = False
        session.headers["Authorization"] = f"Bearer {token}"
        slowest: dict[str, float] = {}
        for _ in range(args.rounds):
            for path in paths(sample_id):
                t0 = time.perf_counter()
                r = session.get(base + path, timeout=120)
                took = time.perf_counter() - t0
                if r.status_code != 200:
                    raise RuntimeError(f"GET {path}: {r.status_code} {r.text[:200]}")
                slowest[path] = max(slowest.get(path, 0.0), took)
        peak = meter.stop()
        end = worker.memory_info().rss
        master_rss = master.memory_info().rss
    finally:
        web.stop(10)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    for path, took in sorted(slowest.items(), key=lambda kv: -kv[1])[:8]:
        print(f"  slowest: {took * 1000:7.0f} ms  {path}")
    mb = 1024 * 1024
    print(f"web process RSS: idle {idle / mb:.0f} MB, after {end / mb:.0f} MB", end="")
    print(f", peak {peak / mb:.0f} MB")
    print(f"(gunicorn master, which holds no app state: {master_rss / mb:.0f} MB)")
    print(f"peak / target: {peak / mb:.0f} MB / 200 MB -> {'OK' if peak < 200 * mb else 'OVER'}")
    return 0 if peak < 200 * mb else 1


if __name__ == "__main__":
    raise SystemExit(main())
