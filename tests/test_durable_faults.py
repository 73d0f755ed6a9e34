"""Durable runs under faults, on real processes: the whole worker SIGKILLed inside a step,
between two steps and while its run is suspended; Redis restarted (its data kept, or
lost) while a run is suspended; 200 suspended runs across a restart of every process.
Each run ends with every recorded step executed exactly once: the agents (`gated` in
tests/durable_agents.py) count their executions in Redis, so a replay is told from a
second run.

The tests kill workers and restart Redis, so they run on a platform of their own
(tests/support/own_redis.py): an embedded Valkey (append-only, so a restart keeps the
data), its own SQL database, web server and worker. Its workers beat every 0.5 s and
count as dead after 2 s (AGENTDECK_HEARTBEAT, AGENTDECK_WORKER_EXPIRY), so the janitor
requeues a killed worker's job within about 3 s; a killed worker is replaced by a new
one (another hostname) that starts meanwhile.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from uuid import uuid4

import pytest
import redis
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from launcher.net import wait_until
from tests.support import Platform, WebService, WorkerService, http
from tests.support.jobs import job, state_is, submit, suspended
from tests.support.own_redis import RedisControl, start_own_redis_platform
from workers.keys import Keys
from workers.models import Job, RunStep
from workers.replay_log import head_of

KEYS = Keys()
FAST_LOSS = {"AGENTDECK_HEARTBEAT": "0.5", "AGENTDECK_WORKER_EXPIRY": "2"}
FINAL = ("SUCCESS", "FAILURE", "REVOKED")
STEPS = ("one", "two", "three")


# -- a platform of the module's own ------------------------------------------------------------
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
    from workers.models import make_engine

    engine = make_engine(own.database_url)
    yield engine
    engine.dispose()


class Stack:
    """The platform's web server and its current worker. A killed worker is replaced by a
    new one, with a hostname of its own, so the janitor still finds the old one dead."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.web = WebService(platform, name="durable-faults-web", extra_env=FAST_LOSS)
        self.workers: list[WorkerService] = []
        self.worker = self._new_worker()

    def _new_worker(self) -> WorkerService:
        name = f"durable-faults-worker-{len(self.workers) + 1}"
        worker = WorkerService(self.platform, name=name, extra_env=FAST_LOSS)
        self.workers.append(worker)
        return worker

    def kill_worker(self) -> None:
        """SIGKILL the whole worker: its main process and its pool, at once."""
        self.worker.kill()

    def replace_worker(self) -> None:
        self.worker = self._new_worker()
        self.worker.start()

    def close(self) -> None:
        self.web.stop()
        for worker in self.workers:
            worker.stop(timeout=5)


@pytest.fixture(scope="module")
def services(own: Platform) -> Iterator[Stack]:
    stack = Stack(own)
    try:
        stack.worker.start()
        stack.web.start()
        yield stack
    finally:
        stack.close()


@pytest.fixture
def stack(services: Stack, ctl: RedisControl) -> Stack:
    """Redis, the web server and a worker running, whatever the test before did."""
    if not ctl.server.running():
        with contextlib.suppress(Exception):
            ctl.server.stop()
        ctl.server.start()
    if not services.worker.running:
        services.replace_worker()
    services.web.ensure_running()
    return services


@pytest.fixture(scope="module")
def r(own: Platform) -> Iterator[redis.Redis]:
    """A client with no socket timeout, for BLPOPs on what the agents say."""
    client = redis.Redis.from_url(own.redis_url, decode_responses=True)
    yield client
    client.close()


# -- helpers ------------------------------------------------------------------------------------
def answer(url: str, job_id: str, value: Any) -> int:
    return http.post(f"{url}/api/jobs/{job_id}/input", json={"answer": value}).status_code


def ended(url: str, job_id: str, timeout: float = 30) -> dict[str, Any]:
    return state_is(url, job_id, *FINAL, timeout=timeout)


def stopped_at(r: redis.Redis, marker: str, timeout: float = 30) -> str:
    """Where the run stopped to let the test act (the agent's RPUSH), waited for by BLPOP."""
    got = r.blpop([f"durable:{marker}:at"], timeout=timeout)
    assert got is not None, f"the run of {marker} did not stop within {timeout} s"
    return str(got[1])


def executions(r: redis.Redis, marker: str) -> dict[str, int]:
    values = r.mget([f"durable:{marker}:{step}" for step in STEPS])
    return {step: int(v or 0) for step, v in zip(STEPS, values, strict=True)}


def events(url: str, job_id: str) -> list[dict[str, Any]]:
    return list(http.get(f"{url}/api/jobs/{job_id}/events").json()["events"])


def replayed_steps(evs: list[dict[str, Any]]) -> list[str]:
    return [
        e["data"]["name"] for e in evs if e["type"] == "step.finished" and e["data"]["replayed"]
    ]


def recorded_seq(engine: Engine, job_id: str) -> int:
    """The last seq the recorder has stored in SQL for the job."""
    with Session(engine) as s:
        return int(s.scalar(select(Job.last_seq).where(Job.id == job_id)) or 0)


def in_order(evs: list[dict[str, Any]]) -> bool:
    return [e["seq"] for e in evs] == list(range(1, len(evs) + 1))


# -- the whole worker SIGKILLed ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("stop_at", "runs_of_two"),
    [("inside two", 2), ("between one and two", 1)],
    ids=["inside-a-step", "between-steps"],
)
def test_worker_sigkilled_mid_run_resumes_after_its_last_recorded_step(
    stack: Stack, r: redis.Redis, stop_at: str, runs_of_two: int
) -> None:
    url = stack.web.url
    # given a run that recorded step one and is now inside step two (or between the two)
    marker = uuid4().hex
    job_id = submit(url, "gated", marker=marker, stop_at=stop_at)
    assert stopped_at(r, marker) == stop_at
    # when the whole worker is SIGKILLed there, and a new worker starts
    stack.kill_worker()
    stack.replace_worker()
    # then the janitor finds the job lost and requeues it, and it ends SUCCESS
    done = ended(url, job_id)
    assert done["state"] == "SUCCESS", done
    assert done["result"] == {"one": "one", "two": "two", "three": "three"}
    # and step one, recorded before the kill, ran once; step two ran again only if the kill
    # caught it in flight (it was not recorded); step three once
    assert executions(r, marker) == {"one": 1, "two": runs_of_two, "three": 1}
    # and the events tell it: one job.lost (requeued), step one replayed by the second run
    evs = events(url, job_id)
    lost = [e for e in evs if e["type"] == "job.lost"]
    assert len(lost) == 1 and lost[0]["data"]["requeued"] is True, lost
    assert replayed_steps(evs) == ["one"]
    assert [e["type"] for e in evs].count("job.started") == 2 and in_order(evs)
    # and every step is recorded done, once
    assert [(s["name"], s["status"]) for s in done["steps"]] == [
        ("one", "done"), ("two", "done"), ("three", "done"),
    ]  # fmt: skip


def test_worker_sigkilled_while_a_run_is_suspended_then_answered_resumes(
    stack: Stack, r: redis.Redis
) -> None:
    url = stack.web.url
    # given a run suspended on a question after two recorded steps
    marker = uuid4().hex
    job_id = submit(url, "gated", marker=marker, ask=True)
    suspended(url, job_id)
    # when the whole worker is SIGKILLed, and the question answered while no worker runs
    stack.kill_worker()
    assert answer(url, job_id, "yes") == 202
    assert job(url, job_id)["state"] == "PENDING"  # queued again, waiting for a worker
    # and a new worker starts
    stack.replace_worker()
    # then the run resumes and ends SUCCESS with the answer
    done = ended(url, job_id)
    assert done["state"] == "SUCCESS", done
    assert done["result"] == {"one": "one", "two": "two", "answer": "yes", "three": "three"}
    # and every recorded step ran exactly once
    assert executions(r, marker) == {"one": 1, "two": 1, "three": 1}
    # and the suspended job was never taken for lost: it held no worker when that one died
    evs = events(url, job_id)
    assert "job.lost" not in [e["type"] for e in evs]
    assert replayed_steps(evs) == ["one", "two"] and in_order(evs)


# -- Redis restarted ------------------------------------------------------------------------------
@pytest.mark.parametrize("lose_data", [False, True], ids=["data-kept", "data-lost"])
def test_redis_restarted_while_a_run_is_suspended_then_answered_resumes(
    stack: Stack, ctl: RedisControl, r: redis.Redis, own_sql: Engine, lose_data: bool
) -> None:
    url = stack.web.url
    # given a run suspended on a question after two recorded steps, its events in SQL (what
    # Redis loses before the recorder stores it is gone, as reliability.md says)
    marker = uuid4().hex
    job_id = submit(url, "gated", marker=marker, ask=True)
    suspended(url, job_id)
    head = head_of(r, KEYS, job_id)[0]
    assert wait_until(lambda: recorded_seq(own_sql, job_id) == head, 10), (head, job_id)
    # when Redis restarts, its data kept or lost (a suspended run is in SQL only), and the
    # question is answered
    ctl.restart(lose_data=lose_data)
    assert answer(url, job_id, "after the restart") == 202
    # then the run resumes and ends SUCCESS with the answer
    done = ended(url, job_id)
    assert done["state"] == "SUCCESS", done
    assert done["result"] == {
        "one": "one", "two": "two", "answer": "after the restart", "three": "three",
    }  # fmt: skip
    # and no recorded step ran again (with the data lost, the counts start at the restart)
    before = 0 if lose_data else 1
    assert executions(r, marker) == {"one": before, "two": before, "three": 1}
    # and its history is one stream from seq 1 with no gap or overlap: after a loss, seq
    # went on from what SQL holds, not from 1
    assert in_order(events(url, job_id))


# -- many suspended runs, every process restarted ---------------------------------------------
RUNS = 200


def waiting(engine: Engine, ids: list[str]) -> int:
    with Session(engine) as s:
        return int(
            s.scalar(
                select(func.count())
                .select_from(RunStep)
                .where(RunStep.job_id.in_(ids), RunStep.status == "waiting")
            )
            or 0
        )


def states(engine: Engine, ids: list[str]) -> dict[str, int]:
    with Session(engine) as s:
        rows = s.execute(
            select(Job.state, func.count()).where(Job.id.in_(ids)).group_by(Job.state)
        ).all()
    return {state: int(n) for state, n in rows}


def test_200_suspended_runs_survive_a_restart_of_every_process_and_all_resume(
    stack: Stack, ctl: RedisControl, r: redis.Redis, own_sql: Engine
) -> None:
    url = stack.web.url
    # given 200 runs suspended on a question, each after two recorded steps
    markers = [uuid4().hex for _ in range(RUNS)]
    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(lambda m: submit(url, "gated", marker=m, ask=True), markers))
    assert wait_until(lambda: waiting(own_sql, ids) == RUNS, 60), waiting(own_sql, ids)
    # when every process stops and starts again: the web server, the worker, and Redis
    stack.web.stop()
    stack.worker.stop()
    ctl.restart()
    stack.worker.start()
    stack.web.start()
    # and all 200 are answered at once
    with ThreadPoolExecutor(16) as pool:
        codes = list(pool.map(lambda j: answer(url, j, f"go {j}"), ids))
    assert codes == [202] * RUNS
    # then every run resumes and ends SUCCESS
    assert wait_until(lambda: states(own_sql, ids) == {"SUCCESS": RUNS}, 60), states(own_sql, ids)
    # and every recorded step of every run ran exactly once
    with r.pipeline(transaction=False) as pipe:
        for marker in markers:
            pipe.mget([f"durable:{marker}:{step}" for step in STEPS])
        counted = pipe.execute()
    assert all(values == ["1", "1", "1"] for values in counted), counted
