"""One job SQL cannot store never stops the recorder for everyone else.

A submission holding a lone surrogate once made the recorder fail its pass
every few seconds, forever, at the head of the dirty set, so no later job
reached SQL. Now text UTF-8 cannot hold is stored as U+FFFD, and a job that
still fails to record a few times is quarantined: out of the dirty set,
kept with its error in Redis, logged at ERROR and counted on /metrics.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from tests.support import Platform, WebService, WorkerService, http, wait_until
from tests.support.ws import watch_to_end
from workers.models import EventRow, Job
from workers.settings import get_settings

KEYS = get_settings().keys  # the test process has the platform's environment
METRIC = "agentdeck_recorder_quarantined_jobs"
# A poisoned job: (job id, SQL dialect) -> (its member of the dirty set, its log entry).
Poison = Callable[[str, str], tuple[bytes, dict[str, Any] | str]]


@pytest.fixture
def raw_redis(platform: Platform) -> Iterator[redis.Redis]:
    """A client that reads and writes bytes, as the recorder's does."""
    client = redis.Redis.from_url(platform.redis_url)
    yield client
    client.close()


def quarantined_gauge(web_url: str) -> float:
    text = http.get(f"{web_url}/metrics").text
    match = re.search(rf"^{METRIC} (\S+)$", text, re.MULTILINE)
    assert match, f"{METRIC} is not on /metrics"
    return float(match.group(1))


def recorded(engine: Engine, job_id: str) -> Job | None:
    with Session(engine) as s:
        return s.get(Job, job_id)


def succeeded_in_sql(engine: Engine, job_id: str) -> bool:
    job = recorded(engine, job_id)
    return job is not None and job.state == "SUCCESS"


def run_to_end(web_url: str, agent: str, **input: Any) -> tuple[str, list[dict[str, Any]]]:
    r = http.post(f"{web_url}/api/jobs", json={"agent": agent, "input": input})
    assert r.status_code == 202, r.text
    job_id = r.json()["id"]
    return job_id, watch_to_end(web_url, job_id)


def inject(client: redis.Redis, job: bytes, envelope: dict[str, Any] | str) -> None:
    """A job's replay log and dirty mark, as the publish script leaves them (compact
    JSON), but with score 0: the recorder meets it before any job that runs after."""
    entry = envelope if isinstance(envelope, str) else json.dumps(envelope, separators=(",", ":"))
    client.rpush(KEYS.log("").encode() + job, entry)
    client.expire(KEYS.log("").encode() + job, 3600)
    client.zadd(KEYS.dirty, {job: 0})


def envelope(job: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"job": job, "seq": 1, "type": "job.queued", "ts": time.time(), "state": "PENDING",
            "data": data}  # fmt: skip


def sql_refuses(job: str, dialect: str) -> dict[str, Any]:
    """An envelope the recorder reads but the database will not store: SQLite takes
    anything in an integer column but no list as text; PostgreSQL casts a list to text
    but keeps its integers to 32 bits."""
    if dialect == "sqlite":
        return envelope(job, {"name": ["not", "text"]})
    return {**envelope(job, {}), "seq": 2**40}


def test_text_an_agent_emits_that_utf8_cannot_hold_is_stored_as_u_fffd(
    web: WebService, worker: WorkerService, sql_engine: Engine
) -> None:
    # when an agent streams and returns text holding a lone surrogate and a NUL
    job_id, events = run_to_end(web.url, "surrogate")
    assert events[-1]["state"] == "SUCCESS"
    # then the recorder stores the job and all its events, both replaced by U+FFFD
    assert wait_until(lambda: succeeded_in_sql(sql_engine, job_id), 30)
    with Session(sql_engine) as s:
        rows = s.scalars(select(EventRow).where(EventRow.job_id == job_id)).all()
        job = s.get(Job, job_id)
    assert [r.seq for r in sorted(rows, key=lambda r: r.seq)] == [e["seq"] for e in events]
    (output,) = [r for r in rows if r.type == "output"]
    assert output.data == {"text": "a\ufffdb\ufffdc"}
    assert job is not None and job.result == "a\ufffdb\ufffdc"


@pytest.mark.parametrize(
    "poison",
    [
        # an event SQL refuses (what each database refuses differs)
        lambda job_id, dialect: (job_id.encode(), sql_refuses(job_id, dialect)),
        # a job id that is not UTF-8 (the bytes of a lone surrogate)
        lambda job_id, _: (job_id.encode() + b"\xed\xa0\x80", envelope(job_id + "\ud800", {})),
        # a log entry the replay log's reader cannot read (no "seq":N where it must be)
        lambda job_id, _: (job_id.encode(), json.dumps(envelope(job_id, {}), indent=1)),
    ],
    ids=["sql-refuses-the-event", "id-not-utf8", "log-entry-unreadable"],
)
def test_a_job_that_cannot_be_recorded_is_quarantined_and_the_others_are_recorded(
    web: WebService,
    worker: WorkerService,
    sql_engine: Engine,
    raw_redis: redis.Redis,
    poison: Poison,
) -> None:
    # given the quarantine gauge, and a job no recorder can store first in the dirty set
    before = quarantined_gauge(web.url)
    poison_id = f"poison-{uuid.uuid4()}"
    member, bad = poison(poison_id, sql_engine.dialect.name)
    inject(raw_redis, member, bad)
    # when normal jobs run after it
    done = [run_to_end(web.url, "echo", text=f"after {i}", steps=1, delay=0)[0] for i in range(3)]

    # then every one of them reaches SQL, complete
    def all_recorded() -> bool:
        return all(succeeded_in_sql(sql_engine, j) for j in done)

    assert wait_until(all_recorded, 30), "the later jobs were not recorded: the recorder is stuck"
    # and the bad job is quarantined: out of the dirty set, kept with its error
    assert wait_until(lambda: raw_redis.hexists(KEYS.quarantine, member), 30)
    assert raw_redis.zscore(KEYS.dirty, member) is None
    kept = raw_redis.hget(KEYS.quarantine, member)
    assert kept is not None
    why = json.loads(kept)
    assert why["error"] and why["attempts"] >= 3
    # and reported: counted on /metrics, logged at ERROR
    assert quarantined_gauge(web.url) == before + 1
    assert f"ERROR agentdeck.recorder quarantined job {poison_id}" in web.tail(400)


def test_a_quarantined_job_that_records_after_all_leaves_the_quarantine(
    web: WebService, worker: WorkerService, sql_engine: Engine, raw_redis: redis.Redis
) -> None:
    # given a quarantined job
    job_id = f"poison-{uuid.uuid4()}"
    inject(raw_redis, job_id.encode(), sql_refuses(job_id, sql_engine.dialect.name))
    assert wait_until(lambda: raw_redis.hexists(KEYS.quarantine, job_id), 30)
    before = quarantined_gauge(web.url)
    # when its events become storable and it is marked dirty again (a new event does that)
    fixed = json.dumps(envelope(job_id, {"name": "fixed"}), separators=(",", ":"))
    raw_redis.lset(KEYS.log(job_id), 0, fixed)
    raw_redis.zadd(KEYS.dirty, {job_id: 1})
    # then it is recorded, and leaves the quarantine and the gauge
    assert wait_until(lambda: getattr(recorded(sql_engine, job_id), "name", None) == "fixed", 30)
    assert wait_until(lambda: not raw_redis.hexists(KEYS.quarantine, job_id), 10)
    assert quarantined_gauge(web.url) == before - 1
