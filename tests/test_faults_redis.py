"""Redis faults: restarted, unreachable for 10 s, its data lost, events dropped meanwhile;
the web's pub/sub killed.

The first four hit Redis itself, so they run on a platform of their own: an
embedded Valkey (append-only) that this module stops, pauses and wipes, its
own SQL database, worker and web server, whatever REDIS_URL says. The pub/sub
kill needs no such thing and uses the session's platform.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

import psutil
import pytest
import redis
import requests
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from launcher.net import wait_until
from tests.support import Platform, WebService, WorkerService, http
from tests.support.follow import JobView
from tests.support.own_redis import RedisControl, start_own_redis_platform
from tests.support.services import running
from tests.support.ws import WsClient, is_final
from workers.keys import Keys
from workers.models import EventRow, Job, make_engine
from workers.replay_log import head_of

KEYS = Keys()
FINAL = ("SUCCESS", "FAILURE", "REVOKED")
UNACKED = "unacked"  # kombu's hash of delivered, unacknowledged task messages


# -- a platform whose Redis this module may break ----------------------------------------
@pytest.fixture(scope="module")
def own(platform: Platform) -> Iterator[Platform]:
    own = start_own_redis_platform(keep_latest=platform.output_dir)
    yield own
    own.close()


@pytest.fixture(scope="module")
def ctl(own: Platform) -> RedisControl:
    assert own.embedded_redis is not None
    return RedisControl(own.embedded_redis)


@pytest.fixture(scope="module")
def own_sql(own: Platform) -> Iterator[Engine]:
    engine = make_engine(own.database_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def services(own: Platform) -> Iterator[tuple[WorkerService, WebService]]:
    worker, web = (
        WorkerService(own, name="redis-faults-worker"),
        WebService(own, name="redis-faults-web"),
    )
    with running(worker, web):
        yield worker, web


@pytest.fixture
def stack(
    ctl: RedisControl, services: tuple[WorkerService, WebService]
) -> Iterator[tuple[WorkerService, WebService]]:
    """Redis up and answering, worker and web running: before and after each test."""
    worker, web = services
    _heal(ctl)
    worker.ensure_running()
    web.ensure_running()
    yield worker, web
    _heal(ctl)


def _heal(ctl: RedisControl) -> None:
    ctl.resume()
    if not ctl.server.running():
        with contextlib.suppress(Exception):
            ctl.server.stop()
        ctl.server.start()


# -- helpers ----------------------------------------------------------------------------------
def submit(url: str, agent: str, **input: Any) -> str:
    r = http.post(f"{url}/api/jobs", json={"agent": agent, "input": input}, timeout=10)
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


def sql_events(engine: Engine, job_id: str) -> list[EventRow]:
    with Session(engine) as s:
        return list(
            s.scalars(select(EventRow).where(EventRow.job_id == job_id).order_by(EventRow.seq))
        )


def sql_job(engine: Engine, job_id: str) -> Job | None:
    with Session(engine) as s:
        return s.get(Job, job_id)


def wait_for_state(ctl: RedisControl, job_id: str, timeout: float = 30) -> str | None:
    """The job's live state once final (or whatever it is when the time is up)."""
    r = ctl.client()
    wait_until(lambda: head_of(r, KEYS, job_id)[1] in FINAL, timeout)
    _, state = head_of(r, KEYS, job_id)
    r.close()
    return state


def outputs(view: JobView) -> list[str]:
    return [e["data"]["text"] for _, e in sorted(view.events.items()) if e["type"] == "output"]


def holds(seq: int) -> Callable[[JobView], bool]:
    return lambda view: view.last >= seq


def types(view: JobView) -> list[str]:
    return [e["type"] for _, e in sorted(view.events.items())]


def chunks(n: int) -> list[str]:
    return [f"chunk {i}\n" for i in range(1, n + 1)]


def pubsub_clients(
    client: redis.Redis, pid: int | None = None, db: int | None = None
) -> list[dict[str, Any]]:
    """Pub/sub connections on the server: of the process tree `pid`, or on database `db`."""
    found = [c for c in client.client_list(_type="pubsub") if db is None or int(c["db"]) == db]
    if pid is None:
        return found
    tree = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    ports = {
        conn.laddr.port
        for proc in tree
        for conn in proc.net_connections(kind="tcp")
        if conn.raddr and conn.status == psutil.CONN_ESTABLISHED
    }
    return [c for c in found if int(c["addr"].rsplit(":", 1)[1]) in ports]


# -- 3. Redis restarted / unreachable -------------------------------------------------------
@pytest.mark.parametrize("fault", ["restart", "unreachable_10s"])
def test_redis_restarted_or_unreachable_mid_stream_client_ends_with_every_event_once(
    fault: str, stack: tuple[WorkerService, WebService], ctl: RedisControl, own_sql: Engine
) -> None:
    worker, web = stack
    # given a client watching a job that streams 150 chunks
    count = 150
    job_id = submit(web.url, "chatty", count=count, delay=0.04)
    ws = WsClient(web.url)
    view = JobView(web.url, job_id)
    view.subscribe(ws)
    view.run(ws, until=holds(20), timeout=30)
    worker_pid = worker.pid
    # when Redis restarts (its data kept) or stops answering for 10 s while the job streams
    if fault == "restart":
        ctl.restart()
    else:
        ctl.pause()
        time.sleep(10)
        ctl.resume()
    # then the client, still connected, ends with seq 1..N, each event exactly once
    view.run(ws, timeout=90)
    ws.close()
    assert (view.gaps, view.dups) == (0, 0)
    assert view.seqs() == list(range(1, view.last + 1))
    assert outputs(view) == chunks(count)  # none lost, none published twice
    # and the worker kept running the job: one run, no job.lost, SUCCESS
    assert worker.running and worker.pid == worker_pid
    assert types(view).count("job.started") == 1 and "job.lost" not in types(view)
    assert view.events[view.last]["type"] == "job.succeeded"
    # and it still takes new jobs (it did not exit after the broker connection was lost)
    assert wait_for_state(ctl, submit(web.url, "echo", text="after", steps=1, delay=0)) == "SUCCESS"
    assert worker.running and worker.pid == worker_pid
    # and its task was acknowledged: nothing waits in the broker to run it again
    r = ctl.client()
    assert wait_until(lambda: r.hlen(UNACKED) == 0, 10)
    # and SQL ends with every event
    n = view.last
    assert wait_until(
        lambda: [r.seq for r in sql_events(own_sql, job_id)] == list(range(1, n + 1)), 20
    )
    row = sql_job(own_sql, job_id)
    assert row is not None and row.state == "SUCCESS" and row.last_seq == n
    # and the web process holds one subscription again, no stale one left behind
    assert wait_until(lambda: len(pubsub_clients(r, web.pid)) == 1, 10)
    r.close()


def test_redis_data_lost_mid_job_stale_resume_gets_reset_and_the_job_still_ends(
    stack: tuple[WorkerService, WebService], ctl: RedisControl, own_sql: Engine
) -> None:
    worker, web = stack
    # given a client that watched the first part of a job, its events recorded in SQL
    job_id = submit(web.url, "chatty", count=80, delay=0.1)
    ws = WsClient(web.url)
    view = JobView(web.url, job_id)
    view.subscribe(ws)
    view.run(ws, until=holds(20), timeout=30)
    ws.close()
    since, epoch = view.last, view.epoch
    assert epoch
    assert wait_until(lambda: len(sql_events(own_sql, job_id)) >= since, 10)
    recorded = [(r.seq, r.type) for r in sql_events(own_sql, job_id)]
    # when Redis restarts with its data lost while the job runs on
    ctl.restart(lose_data=True)
    # then the epoch changes (the worker's next events start a new one)
    r = ctl.client()
    assert wait_until(lambda: r.get(KEYS.epoch) not in (None, epoch), 20)
    # and a client resuming with its old since and epoch gets reset, not wrong events
    back = WsClient(web.url)
    answer = back.subscribe_job(job_id, since=since, epoch=epoch)
    assert answer["type"] == "reset"
    # and the page, reloaded over REST and subscribed from there, sees the job end
    page = JobView(web.url, job_id)
    page.reload()
    page.subscribe(back)
    page.run(back, until=lambda v: any(is_final(e) for e in v.events.values()), timeout=60)
    back.close()
    assert (page.gaps, page.dups, page.resets) == (0, 0, 0)
    # and the job does not stay STARTED: it ends final, live and in SQL
    assert head_of(r, KEYS, job_id)[1] in FINAL
    assert wait_until(lambda: getattr(sql_job(own_sql, job_id), "state", None) in FINAL, 20)
    # and SQL keeps the history recorded before the loss
    after = {(row.seq, row.type) for row in sql_events(own_sql, job_id)}
    assert set(recorded) <= after
    # and seq went on from where it was, not from 1
    assert max(seq for seq, _ in after) > max(seq for seq, _ in recorded)
    r.close()


def test_each_data_loss_gives_a_new_epoch_even_when_the_same_process_publishes_first(
    stack: tuple[WorkerService, WebService], ctl: RedisControl
) -> None:
    _, web = stack
    r = ctl.client()
    epochs = []
    for _ in range(2):
        # given Redis wiped, and the web process the first to publish (job.queued)
        ctl.restart(lose_data=True)
        assert r.get(KEYS.epoch) is None
        job_id = submit(web.url, "echo", text="hi", steps=1, delay=0)
        epochs.append(r.get(KEYS.epoch))
        assert wait_for_state(ctl, job_id, 60) == "SUCCESS"
    r.close()
    # then each loss gave its own epoch, so a stale position is always detected
    assert epochs[0] and epochs[1] and epochs[0] != epochs[1]


def test_resuming_while_redis_is_down_gets_reset_and_the_connection_stays(
    stack: tuple[WorkerService, WebService], ctl: RedisControl
) -> None:
    _, web = stack
    # given a client that followed a job to its end, and knows its last seq and epoch
    job_id = submit(web.url, "echo", text="a b", steps=1, delay=0)
    ws = WsClient(web.url)
    view = JobView(web.url, job_id).follow(ws, timeout=30)
    # when Redis is down and the client resumes on the same connection
    ctl.server.stop()
    try:
        answer = ws.subscribe_job(job_id, since=view.last, epoch=view.epoch)
        ws.send({"op": "ping"})
        pong = ws.wait_for(lambda f: f["type"] == "pong")
    finally:
        ctl.server.start()
        ws.close()
    # then it is told to reload (reset), and its connection is still served
    assert answer["type"] == "reset" and pong


# -- events a publisher had to drop while Redis was away -------------------------------------
def metric(url: str, name: str) -> float | None:
    """A sample's value on /metrics (None: not there, or the web cannot answer now)."""
    try:
        r = http.get(f"{url}/metrics", timeout=5)
    except requests.RequestException:
        return None
    if r.status_code != 200:
        return None
    for family in text_string_to_metric_families(r.text):
        for sample in family.samples:
            if sample.name == name:
                return float(sample.value)
    return None


def submit_to(url: str, queue: str, agent: str, **input: Any) -> str:
    """Submit once the web knows the queue (from its worker's first heartbeat)."""
    body = {"agent": agent, "input": input, "queue": queue}
    answer: dict[str, Any] = {}

    def accepted() -> bool:
        r = http.post(f"{url}/api/jobs", json=body, timeout=10)
        assert r.status_code in (202, 422), r.text
        answer.update(r.json())
        return r.status_code == 202

    assert wait_until(accepted, 20, interval=0.2), answer
    return str(answer["id"])


def test_events_dropped_while_redis_is_away_are_counted_on_metrics(
    stack: tuple[WorkerService, WebService], ctl: RedisControl, own: Platform
) -> None:
    _, web = stack
    # given a worker whose publisher buffers at most 20 events, on a queue of its own
    small = WorkerService(
        own,
        name="small-buffer-worker",
        queues=("small-buffer",),
        extra_env={"AGENTDECK_PUBLISH_BUFFER": "20"},
    )
    small.start()
    r = ctl.client()
    try:
        dropped = metric(web.url, "agentdeck_events_dropped_total")
        errors = metric(web.url, "agentdeck_publish_errors_total")
        assert dropped is not None and errors is not None
        # and a job streaming fast on it
        job_id = submit_to(web.url, "small-buffer", "chatty", count=1500, delay=0.005)
        assert wait_until(lambda: head_of(r, KEYS, job_id)[0] >= 10, 30)
        # when Redis stops while the job streams, until the worker's buffer has filled
        ctl.server.stop()
        try:
            small.proc.wait_for_line("publish buffer full", 30)
        finally:
            ctl.server.start()
        # then, once Redis is back, /metrics counts the dropped events and failed calls
        assert wait_until(
            lambda: (metric(web.url, "agentdeck_events_dropped_total") or 0) > dropped, 30
        )
        assert (metric(web.url, "agentdeck_publish_errors_total") or 0) > errors
        assert metric(web.url, "agentdeck_publish_last_error_timestamp_seconds") is not None
        # and the job still ends: its lifecycle events were kept
        assert wait_for_state(ctl, job_id, 90) == "SUCCESS"
    finally:
        r.close()
        small.stop()


# -- 4. the web process's pub/sub connection killed ----------------------------------------------
def test_pubsub_connection_killed_mid_stream_client_sees_every_event_once(
    web: WebService, worker: WorkerService, platform: Platform
) -> None:
    admin = redis.Redis.from_url(platform.redis_url, decode_responses=True)
    assert web.pid is not None
    # given a client watching a fast stream, and the web process's one subscription
    count = 400
    job_id = submit(web.url, "chatty", count=count, delay=0.005)
    ws = WsClient(web.url)
    view = JobView(web.url, job_id)
    view.subscribe(ws)
    view.run(ws, until=holds(30), timeout=30)
    assert len(pubsub_clients(admin, web.pid)) == 1
    # when every pub/sub connection of the platform is killed mid-stream, twice (CLIENT KILL
    # TYPE pubsub: the web's, and the worker's broker connection, on this session's database)
    db = int(admin.connection_pool.connection_kwargs.get("db", 0))
    killed = 0
    for at in (60, 200):
        view.run(ws, until=holds(at), timeout=30)
        (mine,) = pubsub_clients(admin, web.pid)
        ids = [c["id"] for c in pubsub_clients(admin, db=db)]
        assert mine["id"] in ids
        killed += sum(admin.client_kill_filter(_id=i, _type="pubsub") for i in ids)
    assert killed > 2  # not only the web's: the worker's (kombu's) too
    # then the client sees 1..N exactly once: the gap was filled from the replay log
    view.run(ws, timeout=60)
    ws.close()
    assert (view.gaps, view.dups, view.resets) == (0, 0, 0)
    assert outputs(view) == chunks(count)
    # and the job ran once: the worker's lost broker connection did not run it again
    assert types(view).count("job.started") == 1 and "job.lost" not in types(view)
    # and the web process is subscribed again, once: no stale subscription left behind
    assert wait_until(lambda: len(pubsub_clients(admin, web.pid)) == 1, 10)
    admin.close()
