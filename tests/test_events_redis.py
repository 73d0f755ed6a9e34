"""The event bus on a Redis of its own (AGENTDECK_EVENTS_URL), Celery's broker on REDIS_URL.

The platform here has two Redis servers: the broker (a database of its own on
REDIS_URL's server, or an embedded Valkey) and an embedded Valkey for the
event bus, which this module restarts. A job streams live through the events
Redis, the broker ends holding nothing but Celery's keys, and a restart of
the events Redis mid-stream loses and repeats nothing (what
docs/reliability.md promises for Redis).
"""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import Iterator

import pytest
import redis
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from launcher.embedded_redis import EmbeddedRedis
from launcher.net import free_port, wait_until
from tests.support import Platform, WebService, WorkerService, http
from tests.support.follow import JobView
from tests.support.jobs import state_is, submit
from tests.support.own_redis import RedisControl
from tests.support.platform import start_own_platform
from tests.support.redis_db import CLAIM_KEY
from tests.support.services import running
from tests.support.ws import WsClient
from workers.keys import Keys
from workers.models import EventRow, make_engine
from workers.replay_log import head_of

# A prefix of this module's own: pub/sub channels are server-wide (not per database), and
# other platforms on REDIS_URL's server publish on the default prefix's channels.
PREFIX = f"evbus-{uuid.uuid4().hex[:8]}:"
KEYS = Keys(PREFIX)
# What Celery (kombu's Redis transport, the Redis result backend) keeps on its broker.
CELERY_KEY = re.compile(
    r"^(_kombu\..+|unacked|unacked_index|unacked_mutex|celery-task-meta-.+"
    r"|celery(\x06\x16\d)?)$"
)


@pytest.fixture(scope="module")
def broker(platform: Platform) -> Iterator[Platform]:
    """The broker: a platform of its own (its own Redis database and SQL database)."""
    own = start_own_platform(platform)
    yield own
    own.close()


@pytest.fixture(scope="module")
def events(broker: Platform) -> Iterator[RedisControl]:
    """The event bus's Redis: a Valkey server of its own, append-only (a restart keeps data)."""
    server = EmbeddedRedis(
        broker.data_dir.parent / "events-valkey",
        port=free_port(),
        config={"logfile": str(broker.output_dir / "events-valkey.log")},
    )
    server.start()
    yield RedisControl(server)
    server.stop()


@pytest.fixture(scope="module")
def stack(broker: Platform, events: RedisControl) -> Iterator[tuple[WorkerService, WebService]]:
    env = {"AGENTDECK_EVENTS_URL": events.url, "AGENTDECK_KEY_PREFIX": PREFIX}
    worker = WorkerService(broker, name="events-redis-worker", extra_env=env)
    web = WebService(broker, name="events-redis-web", extra_env=env)
    with running(worker, web):
        yield worker, web


@pytest.fixture(scope="module")
def sql(broker: Platform) -> Iterator[Engine]:
    engine = make_engine(broker.database_url)
    yield engine
    engine.dispose()


def outputs(view: JobView) -> list[str]:
    return [e["data"]["text"] for _, e in sorted(view.events.items()) if e["type"] == "output"]


def sql_seqs(engine: Engine, job_id: str) -> list[int]:
    with Session(engine) as s:
        return list(
            s.scalars(select(EventRow.seq).where(EventRow.job_id == job_id).order_by(EventRow.seq))
        )


def worker_online(base: str, hostname: str) -> bool:
    rows = http.get(f"{base}/api/monitor/workers").json()["workers"]
    return any(w["hostname"] == hostname and w["online"] for w in rows)


def test_events_stream_through_their_own_redis_and_survive_its_restart(
    broker: Platform,
    events: RedisControl,
    stack: tuple[WorkerService, WebService],
    sql: Engine,
) -> None:
    worker, web = stack
    ev = events.client()
    # given a worker and a web server whose event bus is a Redis apart from the broker
    assert wait_until(lambda: worker_online(web.url, worker.hostname), 15)
    # when a client watches a job that streams 120 chunks
    count = 120
    job_id = submit(web.url, "chatty", count=count, delay=0.04)
    view = JobView(web.url, job_id)
    ws = WsClient(web.url)
    view.subscribe(ws)
    view.run(ws, until=lambda v: v.last >= 20, timeout=30)
    # then it streams live out of the events Redis (its replay log is there)
    assert head_of(ev, KEYS, job_id)[0] >= 20
    # when the events Redis restarts (its data kept) mid-stream
    worker_pid = worker.pid
    events.restart()
    ev = events.client()
    # then the client, still connected, ends with every event exactly once
    view.run(ws, timeout=60)
    ws.close()
    assert (view.gaps, view.dups) == (0, 0)
    assert view.seqs() == list(range(1, view.last + 1))
    assert outputs(view) == [f"chunk {i}\n" for i in range(1, count + 1)]
    assert view.events[view.last]["type"] == "job.succeeded"
    assert worker.running and worker.pid == worker_pid
    # and SQL holds the whole history, and the worker is back online on the web
    state_is(web.url, job_id, "SUCCESS")
    n = view.last
    assert wait_until(lambda: sql_seqs(sql, job_id) == list(range(1, n + 1)), 20)
    assert wait_until(lambda: worker_online(web.url, worker.hostname), 15)
    # and every Agentdeck key and channel is on the events Redis ...
    ours = set(ev.scan_iter(f"{PREFIX}*"))
    assert {KEYS.log(job_id), KEYS.epoch, KEYS.worker_beats, KEYS.workers} <= ours
    assert KEYS.events_channel in ev.pubsub_channels(f"{PREFIX}*")
    # ... and the broker holds only Celery's (its queues, bindings and results)
    br = redis.Redis.from_url(broker.redis_url, decode_responses=True)
    with contextlib.closing(br):
        on_broker = set(br.scan_iter("*")) - {CLAIM_KEY}
        assert f"celery-task-meta-{job_id}" in on_broker
        assert not [k for k in on_broker if not CELERY_KEY.match(k)], on_broker
        assert br.pubsub_channels(f"{PREFIX}*") == []
