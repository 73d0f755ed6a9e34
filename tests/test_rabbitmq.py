"""RabbitMQ as the Celery broker (AGENTDECK_BROKER_URL=amqp://...), on the real server.

Results and Agentdeck's events stay on the session's Redis; only the task
messages go through RabbitMQ, on a vhost of this module's own (see
tests/support/rabbitmq.py). A worker and a web server of the module's own
take the amqp URL; the worker consumes a queue named for this run, and a
second queue has no consumer, so its messages wait there.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis

from launcher.net import wait_until
from tests.support import Platform, WebService, WorkerService, http
from tests.support.follow import JobView
from tests.support.jobs import state_is, suspended
from tests.support.rabbitmq import own_vhost, require_rabbitmq, unique_queue
from tests.support.services import running
from tests.support.ws import WsClient

WORKED = unique_queue("worked")
IDLE = unique_queue("idle")  # no worker consumes it


pytestmark = pytest.mark.deployment


@pytest.fixture(scope="module")
def amqp_url() -> Iterator[str]:
    with own_vhost(require_rabbitmq()) as url:
        yield url


@pytest.fixture(scope="module")
def stack(platform: Platform, amqp_url: str) -> Iterator[tuple[WorkerService, WebService]]:
    broker = {"AGENTDECK_BROKER_URL": amqp_url}
    worker = WorkerService(platform, name="amqp-worker", queues=(WORKED,), extra_env=broker)
    web = WebService(
        platform, name="amqp-web", extra_env={**broker, "AGENTDECK_QUEUES": f"{WORKED},{IDLE}"}
    )
    with running(worker, web):
        yield worker, web


def submit(base: str, agent: str, queue: str = WORKED, **input: Any) -> str:
    body = {"agent": agent, "input": input, "queue": queue}
    r = http.post(f"{base}/api/jobs", json=body, timeout=10)
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


def outputs(view: JobView) -> list[str]:
    return [e["data"]["text"] for _, e in sorted(view.events.items()) if e["type"] == "output"]


def test_a_job_runs_and_streams_live_through_rabbitmq(
    stack: tuple[WorkerService, WebService], redis_client: redis.Redis, amqp_url: str
) -> None:
    _, web = stack
    # given a web server and a worker whose broker is RabbitMQ
    r = http.get(f"{web.url}/api/monitor/broker", timeout=10)
    assert r.status_code == 200 and r.json()["broker"].startswith("amqp://")
    # when a job that streams 40 chunks is submitted and watched live
    job_id = submit(web.url, "chatty", count=40, delay=0.02)
    ws = WsClient(web.url)
    view = JobView(web.url, job_id).follow(ws, timeout=60)
    ws.close()
    # then the client sees 1..N exactly once, every chunk, and the job succeeds
    assert (view.gaps, view.dups, view.resets) == (0, 0, 0)
    assert view.seqs() == list(range(1, view.last + 1))
    assert outputs(view) == [f"chunk {i}\n" for i in range(1, 41)]
    assert view.events[view.last]["type"] == "job.succeeded"
    # and the task message went through RabbitMQ, not Redis (no list or unacked hash there)
    assert redis_client.exists(WORKED, "unacked") == 0
    # and a retry of the job is a new job that runs through RabbitMQ too
    r = http.post(f"{web.url}/api/jobs/{job_id}/retry", timeout=10)
    assert r.status_code == 202, r.text
    assert state_is(web.url, str(r.json()["id"]), "SUCCESS", timeout=60)["state"] == "SUCCESS"


def test_cancel_revokes_a_running_job_through_rabbitmq(
    stack: tuple[WorkerService, WebService],
) -> None:
    worker, web = stack
    # given a long job running on the worker
    job_id = submit(web.url, "chatty", count=2000, delay=0.05)
    state_is(web.url, job_id, "STARTED", timeout=30)
    # when it is cancelled
    r = http.post(f"{web.url}/api/jobs/{job_id}/cancel", timeout=10)
    assert r.status_code in (200, 202), r.text
    # then it ends REVOKED, well before its run would have
    assert state_is(web.url, job_id, "REVOKED", timeout=30)["state"] == "REVOKED"
    # and the worker lives on and takes the next job
    assert worker.running
    nxt = submit(web.url, "echo", text="after", steps=1, delay=0)
    assert state_is(web.url, nxt, "SUCCESS", timeout=30)["state"] == "SUCCESS"


def queue_row(web: WebService, name: str) -> dict[str, Any] | None:
    r = http.get(f"{web.url}/api/monitor/broker", timeout=10)
    assert r.status_code == 200, r.text
    return next((q for q in r.json()["queues"] if q["name"] == name), None)


def flower_length(web: WebService, name: str) -> int | None:
    r = http.get(f"{web.url}/api/queues/length", timeout=10)
    assert r.status_code == 200, r.text
    return next((q["messages"] for q in r.json()["active_queues"] if q["name"] == name), None)


def test_the_broker_page_and_queues_api_show_rabbitmq_queues_with_their_lengths(
    stack: tuple[WorkerService, WebService],
) -> None:
    worker, web = stack
    # given 3 jobs sent to a queue no worker consumes
    for i in range(3):
        submit(web.url, "echo", queue=IDLE, text=f"waits {i}", steps=1, delay=0)
    # then the broker page lists that RabbitMQ queue with its 3 messages and no consumer
    assert wait_until(lambda: (queue_row(web, IDLE) or {}).get("messages") == 3, 10), queue_row(
        web, IDLE
    )
    idle = queue_row(web, IDLE)
    assert idle is not None and (idle["consumers"], idle["unacked"]) == (0, 0)
    # and Flower's /api/queues/length says the same
    assert flower_length(web, IDLE) == 3
    # and the worker's queue is there, empty, with the worker as its consumer
    worked = queue_row(web, WORKED)
    assert worked is not None and worked["messages"] == 0
    assert worked["consumers"] >= 1
    consumers = [worker.hostname]
    assert wait_until(lambda: (queue_row(web, WORKED) or {}).get("workers") == consumers, 10)
    # and /metrics carries the length as well
    r = http.get(f"{web.url}/metrics", timeout=10)
    assert f'agentdeck_queue_length{{queue="{IDLE}"}} 3.0' in r.text


def test_a_durable_run_suspends_and_resumes_and_time_limits_hold_through_rabbitmq(
    stack: tuple[WorkerService, WebService],
) -> None:
    _, web = stack
    # given a run that asks a question (it suspends: its message is acknowledged)
    job_id = submit(web.url, "ask", question="go on?")
    suspended(web.url, job_id)
    # when it is answered
    r = http.post(f"{web.url}/api/jobs/{job_id}/input", json={"answer": "yes"}, timeout=10)
    assert r.status_code in (200, 202), r.text
    # then it resumes through RabbitMQ (on its own queue) and returns the answer
    done = state_is(web.url, job_id, "SUCCESS", "FAILURE", timeout=60)
    assert (done["state"], done["result"]) == ("SUCCESS", "yes"), done
    # and a run past its 1 s time limit fails with the limit's error
    late = submit(web.url, "overrun", seconds=30)
    failed = state_is(web.url, late, "FAILURE", "SUCCESS", timeout=30)
    assert failed["state"] == "FAILURE" and "time limit" in failed["error"].lower(), failed
