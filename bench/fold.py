"""The recorder's fold of stored jobs' lifecycle events: CPU per job, against the ORM.

A worker running short tasks makes `job.received`, `job.started` and `job.succeeded`
for jobs whose rows the web process stored at submission; the recorder folds them
into those rows (`webapp.history.fold_events`: the rows read as plain values, one
UPDATE per set of changed columns). The baseline, in the same run, on the same
database: the same events folded into the same rows through the ORM's unit of work
(rows loaded as `Job` objects, `apply_event`, flush), as the recorder did before.
Rounds alternate between the two; the medians are shown.

    python -m bench.fold [--quick] [--jobs 200] [--rounds 12]

With DATABASE_URL set it runs on that server (a database of its own); otherwise on
SQLite.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable, Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from bench.report import Figure
from tests.support import start_platform
from webapp.history import apply_event, fold_events
from workers.envelope import Event
from workers.events import STATE_AFTER, EventType
from workers.models import Job, make_engine, make_sessionmaker

Fold = Callable[[Session, Mapping[str, int], Mapping[str, list[Event]]], None]


def orm_fold(session: Session, known: Mapping[str, int], by_job: Mapping[str, list[Event]]) -> None:
    """The baseline: every row loaded as a `Job`, folded, written by the unit of work."""
    rows = {job.id: job for job in session.scalars(select(Job).where(Job.id.in_(list(by_job))))}
    for job_id, events in by_job.items():
        for event in events:
            apply_event(rows[job_id], event)


def lifecycle(job_id: str, k: int) -> list[Event]:
    """A short task's events after `job.queued`: half of them end in this pass."""

    def event(seq: int, type_: EventType, data: dict[str, object]) -> Event:
        return Event(job_id, seq, type_.value, float(seq), STATE_AFTER[type_].value, data)

    events = [
        event(2, EventType.JOB_RECEIVED, {"worker": "celery@bench"}),
        event(3, EventType.JOB_STARTED, {"worker": "celery@bench", "retries": 0}),
    ]
    if k % 2:
        events.append(event(4, EventType.JOB_SUCCEEDED, {"result": {"k": k}}))
    return events


def measure(database_url: str, jobs: int, rounds: int) -> tuple[float, float]:
    """(fold_events, ORM) median µs of CPU a job."""
    engine = make_engine(database_url)
    sessions = make_sessionmaker(engine)
    times: dict[str, list[float]] = {"fold": [], "orm": []}
    try:
        for r in range(rounds):
            way: str
            fold: Fold
            for way, fold in (("fold", fold_events), ("orm", orm_fold)):
                ids = [f"fold-{way}-{r}-{i}" for i in range(jobs)]
                with sessions.begin() as s:
                    s.add_all(
                        Job(id=i, name="t", state="PENDING", created_at=1.0, retries=0,
                            last_seq=1, input={"text": "hi"})
                        for i in ids
                    )  # fmt: skip
                by_job = {job_id: lifecycle(job_id, k) for k, job_id in enumerate(ids)}
                started = time.thread_time()
                with sessions.begin() as s:
                    fold(s, dict.fromkeys(ids, 1), by_job)
                times[way].append((time.thread_time() - started) / jobs * 1e6)
    finally:
        engine.dispose()
    return statistics.median(times["fold"]), statistics.median(times["orm"])


def figures(quick: bool) -> list[Figure]:
    return run(jobs=50 if quick else 200, rounds=4 if quick else 12)


def run(jobs: int, rounds: int) -> list[Figure]:
    platform = start_platform(os.environ)
    try:
        fold, orm = measure(platform.database_url, jobs, rounds)
    finally:
        platform.close()
    where = "PostgreSQL" if platform.database_url.startswith("postgresql") else "SQLite"
    return [
        Figure(
            name=f"recorder, lifecycle events of {jobs} stored jobs a pass ({where}): "
            "CPU per job folded",
            value=fold,
            unit="µs",
            baseline=orm,
            baseline_name="the same fold through the ORM's unit of work",
        )
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--jobs", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=12)
    args = ap.parse_args()
    for f in run(50, 4) if args.quick else run(args.jobs, args.rounds):
        print(f"{f.name}: {f.value:.1f} {f.unit} (×{f.ratio:.2f} of {f.baseline:.1f} µs, "
              f"{f.baseline_name})")  # fmt: skip


if __name__ == "__main__":
    main()
