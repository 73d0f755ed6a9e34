"""The recorder: the web process's CPU per event it stores in SQL, for streaming jobs.

Issue 14, item 4: a hundred jobs streaming output at 100 events a second each is
10,000 events a second that the web process both fans out and records, on one core.
Here the recorder alone stores such a stream: `--jobs` jobs, each a `job.queued`,
`job.started` and `--events` `output` events, published to the
replay log by the workers' publisher, then recorded in passes of the size a live
recorder meets (`--per-pass` events of each job). The baseline, in the same run, on
the same database: the same rows inserted with the SQL driver's own executemany (no
Redis, no decoding, no ORM), the floor of writing them.

    python -m bench.recorder [--quick] [--jobs 100] [--events 200] [--per-pass 5]

With REDIS_URL and DATABASE_URL set it runs on those (a database of its own);
otherwise on an embedded Valkey and SQLite.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import uuid
from typing import Any

import redis
from sqlalchemy import text as sql_text

from bench.report import Figure
from tests.support import start_platform
from webapp.recorder import Recorder
from workers.events import EventType
from workers.models import make_engine, make_sessionmaker
from workers.publisher import Publisher
from workers.settings import Settings


def _settings(env: dict[str, str]) -> Settings:
    return Settings.from_env(env)


def publish(pub: Publisher, jobs: list[str], start: int, events: int) -> None:
    """The jobs' output events `start` to `start + events` (the first also starts
    them), into the replay log."""
    for job in jobs:
        if start == 0:
            pub.emit(job, EventType.JOB_QUEUED, {"name": "bench.stream", "agent": "stream"})
            pub.emit(job, EventType.JOB_STARTED, {"worker": "bench@host"})
        for i in range(start, start + events):
            pub.emit(job, "output", output(i))
    assert pub.flush(timeout=60), "the publisher could not flush"


def output(i: int) -> dict[str, Any]:
    return {"text": f"token {i} " + "x" * 180, "stream": "stdout"}


def measure_recorder(env: dict[str, str], jobs: int, events: int, per_pass: int) -> float:
    """CPU µs per event the recorder stores, in passes of `per_pass` events per job."""
    settings = _settings(env)
    client = redis.Redis.from_url(settings.events_url)
    engine = make_engine(settings.sql_url)
    recorder = Recorder(settings, client, make_sessionmaker(engine))
    pub = Publisher(settings)  # its thread is a daemon's: it ends with the process
    ids = [f"bench-{uuid.uuid4().hex[:12]}" for _ in range(jobs)]
    cpu = 0.0
    try:
        for done in range(0, events, per_pass):
            publish(pub, ids, done, min(per_pass, events - done))
            started = time.thread_time()
            while recorder.drain_once():
                pass
            cpu += time.thread_time() - started
        with engine.connect() as conn:
            stored = conn.execute(
                sql_text("SELECT count(*) FROM events WHERE job_id LIKE 'bench-%'")
            ).scalar_one()
        expected = jobs * (events + 2)  # each job's output, queued and started
        assert stored == expected, f"stored {stored} of {expected} events"
        return cpu / recorder.recorded * 1e6
    finally:
        engine.dispose()
        client.close()


def measure_bare_insert(env: dict[str, str], jobs: int, events: int, per_pass: int) -> float:
    """CPU µs per event for the same rows with the driver's executemany, per pass."""
    settings = _settings(env)
    engine = make_engine(settings.sql_url)
    postgres = engine.dialect.name == "postgresql"
    mark = "%s" if postgres else "?"
    sql = (
        f"INSERT INTO events (job_id, seq, type, ts, state, data) VALUES "
        f"({', '.join([mark] * 6)}) ON CONFLICT (job_id, seq) DO NOTHING"
    )
    ids = [f"bare-{uuid.uuid4().hex[:12]}" for _ in range(jobs)]
    cpu = 0.0
    try:
        for done in range(0, events, per_pass):
            rows: list[tuple[Any, ...]] = []
            for job in ids:
                for i in range(done, min(done + per_pass, events)):
                    data = json.dumps(output(i))
                    rows.append((job, i + 3, "output", time.time(), "STARTED", data))
            raw = engine.raw_connection()
            try:
                started = time.thread_time()
                cursor = raw.cursor()
                cursor.executemany(sql, rows)
                raw.commit()
                cpu += time.thread_time() - started
            finally:
                raw.close()
        return cpu / (jobs * events) * 1e6
    finally:
        engine.dispose()


def figures(quick: bool) -> list[Figure]:
    return run(jobs=20 if quick else 100, events=40 if quick else 200, per_pass=5)


def run(jobs: int, events: int, per_pass: int) -> list[Figure]:
    platform = start_platform(os.environ)
    try:
        env = platform.env()
        recorder = measure_recorder(env, jobs, events, per_pass)
        bare = measure_bare_insert(env, jobs, events, per_pass)
    finally:
        platform.close()
    where = "PostgreSQL" if platform.database_url.startswith("postgresql") else "SQLite"
    return [
        Figure(
            name=f"recorder, {jobs} jobs streaming, {per_pass} events a job a pass ({where}): "
            "CPU per event",
            value=recorder,
            unit="µs",
            baseline=bare,
            baseline_name="the same rows by the driver's executemany",
        )
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--jobs", type=int, default=100)
    ap.add_argument("--events", type=int, default=200)
    ap.add_argument("--per-pass", type=int, default=5)
    args = ap.parse_args()
    if args.quick:
        args.jobs, args.events = 20, 40
    for f in run(args.jobs, args.events, args.per_pass):
        ratio = f" (×{f.ratio:.2f} of {f.baseline:.1f} µs, {f.baseline_name})" if f.ratio else ""
        print(f"{f.name}: {f.value:.1f} {f.unit}{ratio}")


if __name__ == "__main__":
    main()
