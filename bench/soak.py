"""Soak: many jobs streaming while clients drop and resume, the web process and Redis restarted.

    python -m bench.soak            # the long run: thousands of reconnect cycles
    python -m bench.soak --short    # under a minute, for CI (tests/test_soak.py)

Starts a platform of its own (an embedded Valkey with its append-only file,
so a restart keeps the data, whatever REDIS_URL says; SQLite, or a new
database on DATABASE_URL's PostgreSQL; a Celery worker; gunicorn gevent), all
on 127.0.0.1. Submits `chatty` jobs, then runs clients (bench/soak_client.py)
that connect, subscribe from their last seq, read for a random while and drop
the connection, over and over, while the web process is SIGKILLed and started
again and Redis is restarted, a few times each. At the end it checks, for every
client and every job it followed: seq 1..N, no gap, no duplicate, each chunk
of output exactly once; SQL holds events 1..N; no job stuck unfinished.
Prints the counts; exits 1 if anything is off.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bench.soak_client import SoakClient
from launcher.net import wait_until
from tests.support import WebService, WorkerService, http
from tests.support.own_redis import RedisControl, start_own_redis_platform
from workers.keys import Keys
from workers.models import EventRow, Job, make_engine
from workers.replay_log import head_of

FINAL = ("SUCCESS", "FAILURE", "REVOKED")
KEYS = Keys()


@dataclass(frozen=True)
class Options:
    jobs: int = 40
    events: int = 400  # output chunks per job (N is this plus the lifecycle events)
    delay: float = 0.02  # seconds between chunks
    clients: int = 40
    jobs_per_client: int = 6
    hold: tuple[float, float] = (0.05, 0.5)  # seconds a connection lives
    web_restarts: int = 3
    redis_restarts: int = 3
    concurrency: int = 4
    time_limit: float = 600.0
    seed: int = 1

    @classmethod
    def short(cls) -> Options:
        return cls(
            jobs=8,
            events=250,
            delay=0.02,
            clients=16,
            jobs_per_client=3,
            web_restarts=1,
            redis_restarts=1,
            concurrency=4,
            time_limit=45.0,
        )


@dataclass
class SoakResult:
    jobs: int = 0
    events: int = 0
    clients: int = 0
    reconnect_cycles: int = 0
    failed_connects: int = 0
    web_restarts: int = 0
    redis_restarts: int = 0
    gaps: int = 0
    duplicates: int = 0
    incomplete: int = 0  # a client's view of a job that is not 1..N (or never ended)
    content_errors: int = 0  # output chunks missing or twice, or the job run twice
    sql_missing: int = 0  # jobs whose SQL events are not 1..N
    stuck: int = 0
    resets: int = 0
    reloads: int = 0
    client_errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not (
            self.gaps
            or self.duplicates
            or self.incomplete
            or self.content_errors
            or self.sql_missing
            or self.stuck
            or self.client_errors
        )


def run(opts: Options, log: Any = print) -> SoakResult:
    started = time.monotonic()
    platform = start_own_redis_platform()
    saved = dict(os.environ)  # restored after: a test session goes on with its own platform
    os.environ.update(platform.exported)  # this process's requests carry the admin token
    assert platform.embedded_redis is not None
    ctl = RedisControl(platform.embedded_redis)
    worker = WorkerService(platform, name="soak-worker", concurrency=opts.concurrency)
    web = WebService(platform, name="soak-web")
    engine = make_engine(platform.database_url)
    result = SoakResult(jobs=opts.jobs, clients=opts.clients)
    try:
        worker.start()
        web.start()
        log(f"platform up in {time.monotonic() - started:.1f}s; logs in {platform.output_dir}")
        jobs = [_submit(web.url, opts) for _ in range(opts.jobs)]
        rng = random.Random(opts.seed)
        deadline = time.monotonic() + opts.time_limit
        clients = [
            SoakClient(
                i,
                web.url,
                rng.sample(jobs, min(opts.jobs_per_client, len(jobs))),
                opts.hold,
                deadline,
                seed=rng.randrange(1 << 30),
            )
            for i in range(opts.clients)
        ]
        for client in clients:
            client.start()
        _chaos(opts, web, ctl, clients, deadline, result, log)
        for client in clients:
            client.join(timeout=max(0.0, deadline - time.monotonic()) + 5)
        _check(opts, web, ctl, engine, jobs, clients, result)
    finally:
        web.stop()
        worker.stop()
        engine.dispose()
        ctl.resume()
        platform.close()
        os.environ.clear()
        os.environ.update(saved)
    result.seconds = round(time.monotonic() - started, 1)
    return result


def _submit(url: str, opts: Options) -> str:
    body: dict[str, Any] = {"agent": "chatty", "input": {"count": opts.events, "delay": opts.delay}}
    r = http.post(f"{url}/api/jobs", json=body, timeout=10)
    r.raise_for_status()
    return str(r.json()["id"])


def _chaos(
    opts: Options,
    web: WebService,
    ctl: RedisControl,
    clients: list[SoakClient],
    deadline: float,
    result: SoakResult,
    log: Any,
) -> None:
    """Web SIGKILL + start and Redis restarts, alternating, spread over the clients' progress."""
    faults = [
        fault
        for i in range(max(opts.web_restarts, opts.redis_restarts))
        for fault, times in (("web", opts.web_restarts), ("redis", opts.redis_restarts))
        if i < times
    ]  # web, redis, web, redis, ...
    for i, fault in enumerate(faults):
        at = (i + 1) / (len(faults) + 1)
        wait_until(partial(_reached, opts, clients, at), deadline - time.monotonic(), interval=0.1)
        if time.monotonic() >= deadline or all(c.done for c in clients):
            break
        t0 = time.monotonic()
        if fault == "web":
            web.kill()
            web.start()
            result.web_restarts += 1
        else:
            ctl.restart()
            result.redis_restarts += 1
        log(f"{fault} restarted at {_progress(opts, clients):.0%} in {time.monotonic() - t0:.1f}s")
    wait_until(
        lambda: all(c.done for c in clients), max(0.0, deadline - time.monotonic()), interval=0.2
    )


def _reached(opts: Options, clients: list[SoakClient], share: float) -> bool:
    return _progress(opts, clients) >= share


def _progress(opts: Options, clients: list[SoakClient]) -> float:
    """The share of the events every client will hold at the end that they hold now."""
    per_job = opts.events + 4  # queued, received, started, succeeded
    total = sum(len(c.views) for c in clients) * per_job
    held = sum(len(v.events) for c in clients for v in c.views.values())
    return held / total if total else 1.0


def _check(
    opts: Options,
    web: WebService,
    ctl: RedisControl,
    engine: Any,
    jobs: list[str],
    clients: list[SoakClient],
    result: SoakResult,
) -> None:
    r = ctl.client()
    # No job stuck: every one ends final, live and in SQL (the recorder catches up).
    wait_until(lambda: all(head_of(r, KEYS, j)[1] in FINAL for j in jobs), 30, interval=0.2)
    heads = {j: head_of(r, KEYS, j)[0] for j in jobs}
    complete = {j: (n, n) for j, n in heads.items()}
    wait_until(lambda: _sql_heads(engine, jobs) == complete, 30, interval=0.2)
    sql_heads = _sql_heads(engine, jobs)
    with Session(engine) as s:
        states = dict(s.execute(select(Job.id, Job.state).where(Job.id.in_(jobs))).all())
    result.stuck = sum(1 for j in jobs if states.get(j) not in FINAL)
    result.sql_missing = sum(1 for j in jobs if sql_heads.get(j) != complete[j])
    result.events = sum(heads.values())
    expected = [f"chunk {i}\n" for i in range(1, opts.events + 1)]
    for client in clients:
        result.reconnect_cycles += client.cycles
        result.failed_connects += client.failures
        if client.error:
            result.client_errors.append(client.error)
        for job, view in client.views.items():
            result.gaps += view.gaps
            result.duplicates += view.dups
            result.resets += view.resets
            result.reloads += view.reloads
            if view.seqs() != list(range(1, heads[job] + 1)) or not view.done:
                result.incomplete += 1
                continue
            events = [view.events[seq] for seq in view.seqs()]
            outputs = [e["data"]["text"] for e in events if e["type"] == "output"]
            started = sum(1 for e in events if e["type"] == "job.started")
            if outputs != expected or started != 1:
                result.content_errors += 1
    r.close()


def _sql_heads(engine: Any, jobs: list[str]) -> dict[str, tuple[int, int]]:
    """Per job: (how many events SQL holds, the highest seq): 1..N means (N, N)."""
    with Session(engine) as s:
        rows = s.execute(
            select(EventRow.job_id, func.count(), func.max(EventRow.seq))
            .where(EventRow.job_id.in_(jobs))
            .group_by(EventRow.job_id)
        ).all()
    return {job: (int(n), int(top)) for job, n, top in rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--short", action="store_true", help="the CI run, under a minute")
    parser.add_argument("--clients", type=int)
    parser.add_argument("--jobs", type=int)
    parser.add_argument("--seed", type=int)
    args = parser.parse_args()
    opts = Options.short() if args.short else Options()
    overrides = {k: v for k, v in vars(args).items() if k != "short" and v is not None}
    opts = Options(**{**asdict(opts), **overrides})
    result = run(opts)
    counts = asdict(result)
    print("\nsoak " + ("(short)" if args.short else "(long)"))
    for key, value in counts.items():
        print(f"  {key:<17} {json.dumps(value)}")
    print("  verdict           " + ("OK" if result.ok else "FAILED"))
    sys.exit(0 if result.ok else 1)


if __name__ == "__main__":
    main()
