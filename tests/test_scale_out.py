"""Scale-out: two web processes and two workers on one Redis and one SQL database.

The platform is one of its own (a database on REDIS_URL's server, or an
embedded Valkey; a PostgreSQL database when DATABASE_URL points at one, else
a SQLite file) shared by web A, web B (gunicorn each, own ports), worker 1
(the default queue) and worker 2 (only `QUEUE_2`). Clients on both webs
follow jobs submitted through either and run by either; every one of them
gets every event exactly once. The webs agree on the jobs list, presence and
/metrics. Web A is then SIGKILLed while a job streams, and its clients resume
on web B as the page does (reconnect, `since` = the last seq held), with
nothing lost and nothing twice. The delivery counts are written to
test-output/<run>/scale_out.json.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from launcher.net import wait_until
from tests.support import Platform, WebService, WorkerService, http
from tests.support.follow import Follower, JobView
from tests.support.jobs import job
from tests.support.platform import start_own_platform
from tests.support.services import Service

QUEUE_2 = "scale-out-2"  # only worker 2 consumes it


@pytest.fixture(scope="module")
def own(platform: Platform) -> Iterator[Platform]:
    own = start_own_platform(platform)
    yield own
    own.close()


@pytest.fixture(scope="module")
def fleet(own: Platform) -> Iterator[tuple[WebService, WebService, WorkerService, WorkerService]]:
    """web A, web B, worker 1 (default queue), worker 2 (QUEUE_2 only), started together."""
    web_a, web_b = WebService(own, name="scale-web-a"), WebService(own, name="scale-web-b")
    worker_1 = WorkerService(own, name="scale-worker-1")
    worker_2 = WorkerService(own, name="scale-worker-2", queues=(QUEUE_2,))
    services: list[Service] = [worker_1, worker_2, web_a, web_b]
    try:
        for s in services:
            s.proc.start()
        for s in services:
            s.wait_ready(60)
        yield web_a, web_b, worker_1, worker_2
    finally:
        for s in services:
            s.stop(timeout=5)


def submit(base: str, agent: str, queue: str | None = None, **input: Any) -> str:
    body: dict[str, Any] = {"agent": agent, "input": input}
    if queue:
        body["queue"] = queue
    r = http.post(f"{base}/api/jobs", json=body)
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


def online(base: str) -> set[str]:
    rows = http.get(f"{base}/api/monitor/workers").json()["workers"]
    return {w["hostname"] for w in rows if w["online"]}


def jobs_list(base: str) -> list[tuple[str, str, str | None, int]]:
    rows = http.get(f"{base}/api/jobs", params={"limit": 100}).json()["jobs"]
    return sorted((j["id"], j["state"], j["worker"], j["last_seq"]) for j in rows)


# Timings of each web process's fan-out: they move with every presence event (every 2 s),
# and the serving process reads its own live, the other's from its last 2-second snapshot.
MOVING = ("agentdeck_ws_fanout_",)


def metrics(base: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every /metrics sample but the fan-out timings."""
    r = requests.get(f"{base}/metrics", headers=http.auth_headers(), timeout=10)
    r.raise_for_status()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
        if not s.name.startswith(MOVING)
    }


def history(base: str, job_id: str) -> list[dict[str, Any]]:
    r = http.get(f"{base}/api/jobs/{job_id}/events", params={"since": 0})
    return list(r.json()["events"])


def outputs(view: JobView) -> list[str]:
    return [e["data"]["text"] for _, e in sorted(view.events.items()) if e["type"] == "output"]


def follow_all(followers: list[Follower], timeout: float) -> None:
    with ThreadPoolExecutor(len(followers)) as pool:
        for done in [pool.submit(f.run, timeout) for f in followers]:
            done.result()


def test_two_webs_and_two_workers_deliver_every_event_once_and_survive_a_web_kill(
    platform: Platform, fleet: tuple[WebService, WebService, WorkerService, WorkerService]
) -> None:
    web_a, web_b, worker_1, worker_2 = fleet
    counts: dict[str, Any] = {}
    # given both workers online as seen from both webs (so QUEUE_2 is a known queue)
    both = {worker_1.hostname, worker_2.hostname}
    assert wait_until(lambda: online(web_a.url) == both == online(web_b.url), 20)

    # when jobs are submitted through both webs, to both workers, and clients on both
    # webs (two each) follow all of them from the moment they exist
    first = submit(web_b.url, "chatty", QUEUE_2, count=60, delay=0.03)  # through B, worker 2
    watchers = [Follower([web_a.url]).watch([first])]  # a client on A watches it live
    jobs = [first]
    for i in range(5):
        web = (web_a, web_b)[i % 2]
        jobs.append(submit(web.url, "chatty", QUEUE_2 if i % 2 else None, count=40, delay=0.01))
    followers = [Follower([w.url]).watch(jobs) for w in (web_a, web_a, web_b, web_b)]
    follow_all(watchers + followers, timeout=45)

    # then the client on A saw B's job run by worker 2, live and complete
    view = watchers[0].views[first]
    assert job(web_a.url, first)["worker"] == worker_2.hostname
    assert (view.gaps, view.dups, view.resets) == (0, 0, 0)
    assert outputs(view) == [f"chunk {i}\n" for i in range(1, 61)]
    assert statistics.median(watchers[0].lag) < 1.0  # delivered as it happened, not replayed
    # and every client has every event of every job, exactly once, as history has it
    heads = {j: len(history(web_b.url, j)) for j in jobs}
    for f in followers:
        assert f.summary() | {"jobs": 0, "reconnects": 0} == {
            "jobs": 0,
            "events": sum(heads.values()),
            "received": sum(heads.values()),
            "duplicates": 0,
            "gaps": 0,
            "resets": 0,
            "reconnects": 0,
        }
        for j, v in f.views.items():
            assert v.seqs() == list(range(1, heads[j] + 1)) and v.done
    counts["phase 1: 6 jobs, 5 clients on 2 webs"] = {
        "expected per client": sum(heads.values()),
        "clients": [f.summary() for f in watchers + followers],
    }
    # and each worker ran the jobs of its queues
    ran = {j: job(web_a.url, j)["worker"] for j in jobs}
    assert {ran[j] for j in jobs[2::2]} == {worker_2.hostname}
    assert {ran[j] for j in jobs[1::2]} == {worker_1.hostname}

    # and both webs agree on the jobs list (SQL), presence and /metrics (Redis)
    assert wait_until(lambda: jobs_list(web_a.url) == jobs_list(web_b.url), 15)
    listed = jobs_list(web_a.url)
    assert [(j, s, n) for j, s, _, n in listed] == sorted((j, "SUCCESS", heads[j]) for j in jobs)
    assert online(web_a.url) == both == online(web_b.url)
    assert wait_until(lambda: metrics(web_a.url) == metrics(web_b.url), 15)
    m = metrics(web_a.url)
    assert m[("agentdeck_workers_online", ())] == 2
    assert m[("agentdeck_events_published_total", ())] == sum(heads.values())

    # when a job streams to clients on both webs and web A is SIGKILLed mid-stream
    long = submit(web_b.url, "chatty", count=150, delay=0.03)
    on_a = [Follower([web_a.url, web_b.url]).watch([long]) for _ in range(2)]
    on_b = [Follower([web_b.url]).watch([long])]
    with ThreadPoolExecutor(3) as pool:
        running = [pool.submit(f.run, 45) for f in on_a + on_b]
        assert wait_until(lambda: all(f.views[long].last >= 20 for f in on_a), 20)
        web_a.kill()
        at_kill = max(max(f.views[long].events) for f in on_a)
        for done in running:
            done.result()

    # then A's clients resumed on B, and every client ends with every event exactly once
    n = len(history(web_b.url, long))
    for f in on_a + on_b:
        v = f.views[long]
        assert (v.gaps, v.dups, v.resets) == (0, 0, 0)
        assert v.seqs() == list(range(1, n + 1)) and f.received == n
        assert outputs(v) == [f"chunk {i}\n" for i in range(1, 151)]
    assert [f.reconnects for f in on_a + on_b] == [1, 1, 0]
    assert v.events[n]["type"] == "job.succeeded"
    assert at_kill < n - 50  # the kill did come mid-stream
    # and web B's recorder stored the whole of it in SQL
    assert wait_until(
        lambda: (long, "SUCCESS", n) in {(j, st, q) for j, st, _, q in jobs_list(web_b.url)}, 15
    )
    counts["phase 2: web A SIGKILLed mid-stream, 3 clients"] = {
        "expected per client": n,
        "held by A's clients when A was killed (at most)": at_kill,
        "clients": [f.summary() | {"web": "A, then B"} for f in on_a]
        + [f.summary() | {"web": "B"} for f in on_b],
    }
    (platform.output_dir / "scale_out.json").write_text(json.dumps(counts, indent=2))
    print(json.dumps(counts, indent=2))  # noqa: T201 (the delivery counts, for the record)
