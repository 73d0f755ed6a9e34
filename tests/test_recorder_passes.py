"""The recorder's passes on a real Redis and SQL database: streams, new jobs and
lifecycle events in the same pass, stored as the one-event-at-a-time fold says.

A pass records its jobs together: a job whose new events only move its state and
seq (a stream's output) costs one row of one UPDATE, its events go in as the text
they came in; a stored job's lifecycle events are folded into its row read as plain
values, and the jobs whose folds changed the same columns share one UPDATE; new jobs
go through the ORM. Either way the rows must be what `apply_event` gives event by
event, and every event once.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.support import Platform
from tests.support.platform import start_own_platform
from webapp.history import apply_event, new_job_row
from webapp.recorder import Recorder
from workers.envelope import decode
from workers.events import EventType
from workers.models import EventRow, Job, make_engine, make_sessionmaker
from workers.publisher import Publisher
from workers.replay_log import read_log
from workers.settings import Settings

JOBS = 30
# What the fold sets (run_no is the database's default, 0, on a row the recorder makes).
COLUMNS = [c.key for c in Job.__table__.columns if c.key != "run_no"]


@pytest.fixture
def own(platform: Platform) -> Iterator[Platform]:
    """A Redis database and SQL database no web process records from."""
    p = start_own_platform(platform)
    yield p
    p.close()


def _output(i: int) -> dict[str, object]:
    return {"text": f'token {i} é 中 \\ " 😀', "stream": "stdout", "n": i}


def test_streams_new_jobs_and_lifecycle_in_one_pass_are_stored_as_folded_one_by_one(
    own: Platform,
) -> None:
    settings = Settings.from_env(own.env())
    client = redis.Redis.from_url(settings.events_url)
    engine = make_engine(settings.sql_url)
    recorder = Recorder(settings, client, make_sessionmaker(engine))
    publisher = Publisher(settings, client)
    ids = [f"pass-{i:02d}" for i in range(JOBS)]
    try:
        # given jobs that started and streamed, recorded
        for job in ids:
            publisher.emit(job, EventType.JOB_QUEUED, {"name": "stream", "agent": "a"})
            publisher.emit(job, EventType.JOB_STARTED, {"worker": "w@h", "retries": 0})
            publisher.emit(job, EventType.OUTPUT, _output(0))
        assert publisher.flush(timeout=30)
        assert recorder.drain_once() == JOBS
        # when a pass meets streams, jobs ending and new jobs together
        for n, job in enumerate(ids):
            for i in range(1, 6):
                publisher.emit(job, EventType.OUTPUT, _output(i))
            # (three sets of changed columns, JSON among them)
            if n % 3 == 0:
                publisher.emit(job, EventType.JOB_SUCCEEDED, {"result": {"n": n, "t": "é 中"}})
            elif n % 3 == 1:
                publisher.emit(job, EventType.JOB_FAILED, {"error": "boom", "traceback": "tb"})
            else:
                publisher.emit(job, EventType.JOB_RETRYING, {"retries": 1, "reason": "again"})
        fresh = [f"pass-new-{i}" for i in range(5)]
        for job in fresh:
            publisher.emit(job, EventType.JOB_QUEUED, {"name": "late", "args": "(1, 'x')"})
            publisher.emit(job, EventType.OUTPUT, _output(0))
        assert publisher.flush(timeout=30)
        while recorder.drain_once():
            pass
        # then every event of every job is stored once, as its envelope says
        with Session(engine) as s:
            for job_id in [*ids, *fresh]:
                _, raws = read_log(client, settings.keys, job_id, 0)
                logged = [decode(raw) for raw in raws]
                stored = s.scalars(
                    select(EventRow).where(EventRow.job_id == job_id).order_by(EventRow.seq)
                ).all()
                assert [(e.seq, e.type, e.ts, e.state, e.data) for e in stored] == [
                    (e.seq, e.type, e.ts, e.state, json.loads(json.dumps(e.data))) for e in logged
                ]
                # and its row is what folding them one by one gives
                folded = new_job_row(logged[0])
                for event in logged:
                    apply_event(folded, event)
                row = s.get(Job, job_id)
                assert row is not None
                assert {c: getattr(row, c) for c in COLUMNS} == {
                    c: getattr(folded, c) for c in COLUMNS
                }
        # and nothing was left over, nor recorded the slow way
        assert client.zcard(settings.keys.dirty) == 0
        assert recorder.recorded == JOBS * 3 + JOBS * 5 + JOBS + 5 * 2
        assert recorder.passes_one_by_one == 0
    finally:
        engine.dispose()
        client.close()
