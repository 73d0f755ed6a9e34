"""The submitter under many threads at once: every job stored, said and sent exactly once.

An in-process app (real Redis and SQL) whose only allowed queue is one no worker
consumes, so the task messages stay there to be counted.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from webapp import create_app, jobs
from webapp.auth.guard import OPEN_PRINCIPAL
from webapp.errors import ApiError
from webapp.services import Services
from workers.models import Job
from workers.replay_log import head_of
from workers.settings import get_settings

QUEUE = f"submitter-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def svc(redis_client: redis.Redis) -> Iterator[Services]:
    settings = dataclasses.replace(get_settings(), queues=(QUEUE,))
    app = create_app(settings, background=False)
    yield app.extensions["agentdeck"]
    redis_client.delete(QUEUE)


def echo(text: str, **extra: Any) -> dict[str, Any]:
    return {"agent": "echo", "input": {"text": text, "steps": 0}, "queue": QUEUE, **extra}


def test_concurrent_single_and_bulk_submissions_are_each_stored_said_and_sent_once(
    svc: Services, redis_client: redis.Redis, sql_engine: Engine
) -> None:
    # given 30 threads submitting 20 jobs one by one (the same idempotency key among
    # them), and 3 threads submitting lists of 100 with a bad item in each
    key = f"shared-{uuid.uuid4().hex}"
    singles: list[str] = []
    keyed: list[tuple[str, bool]] = []
    bulks: list[list[jobs.Pending | ApiError]] = []
    lock = threading.Lock()
    start = threading.Event()

    def one_by_one(n: int) -> None:
        start.wait()
        for i in range(20):
            job, _ = jobs.submit(svc, jobs.Submission.parse(echo(f"{n}-{i}")), OPEN_PRINCIPAL)
            with lock:
                singles.append(job.id)
        job, created = jobs.submit(
            svc, jobs.Submission.parse(echo("keyed", idempotency_key=key)), OPEN_PRINCIPAL
        )
        with lock:
            keyed.append((job.id, created))

    def in_bulk(n: int) -> None:
        start.wait()
        bodies = [echo(f"bulk {n}-{i}") for i in range(99)] + [{"agent": "no-such-agent"}]
        out = jobs.submit_many(svc, bodies, OPEN_PRINCIPAL)
        with lock:
            bulks.append(out)

    threads = [threading.Thread(target=one_by_one, args=(n,)) for n in range(30)]
    threads += [threading.Thread(target=in_bulk, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    # when they all go at once
    start.set()
    for t in threads:
        t.join(120)
    # then every single submission made a job of its own
    assert len(singles) == 600 and len(set(singles)) == 600
    # and the shared key made one job, created once, returned to every other
    assert len({job_id for job_id, _ in keyed}) == 1
    assert sorted(created for _, created in keyed) == [False] * 29 + [True]
    # and each bulk answered in order: 99 jobs, then the unknown agent's error
    bulk_ids = []
    for out in bulks:
        assert [isinstance(o, ApiError) for o in out] == [False] * 99 + [True]
        bad = out[-1]
        assert isinstance(bad, ApiError) and bad.code == "unknown_agent"
        for o in out[:99]:
            assert isinstance(o, jobs.Pending) and o.created and o.error is None
            bulk_ids.append(o.id)
    made = singles + [keyed[0][0]] + bulk_ids
    assert len(set(made)) == 600 + 1 + 297
    # and every job is in SQL, has said job.queued, and has exactly one task message
    with sql_engine.connect() as conn:
        stored = conn.execute(select(func.count()).where(Job.id.in_(made))).scalar_one()
    assert stored == len(made)
    keys = svc.settings.keys
    assert all(head_of(redis_client, keys, job_id)[0] >= 1 for job_id in made)
    messages = redis_client.lrange(QUEUE, 0, -1)
    sent = [json.loads(m)["headers"]["id"] for m in messages]  # type: ignore[union-attr]
    assert sorted(sent) == sorted(made)
