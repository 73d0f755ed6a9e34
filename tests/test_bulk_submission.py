"""POST /api/jobs/bulk answers each submission in order, and a burst of submissions,
single and bulk, all run and are recorded in SQL."""

from __future__ import annotations

import json
import threading
import uuid
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from launcher.net import wait_until
from tests.support import WebService, WorkerService, http
from tests.support.jobs import state_is
from workers.models import Job

ECHO: dict[str, Any] = {"agent": "echo", "input": {"text": "bulk", "steps": 0, "delay": 0}}
FINAL = ("SUCCESS", "FAILURE", "REVOKED")


def bulk(url: str, jobs: Any, **kw: Any) -> Any:
    return http.post(f"{url}/api/jobs/bulk", json={"jobs": jobs}, timeout=30, **kw)


def job_count(url: str) -> int:
    counts = http.get(f"{url}/api/jobs", params={"limit": 1}, timeout=10).json()["counts"]
    return sum(counts.values())


def final_in_sql(engine: Engine, ids: list[str]) -> int:
    with engine.connect() as conn:
        query = select(func.count()).where(Job.id.in_(ids), Job.state.in_(FINAL))
        return int(conn.execute(query).scalar_one())


def test_each_submission_is_answered_in_order_with_its_id_or_its_error(
    web: WebService, worker: WorkerService
) -> None:
    # given a list mixing good submissions with every kind of bad one
    key = f"bulk-{uuid.uuid4().hex}"
    items = [
        ECHO,
        {"agent": "no-such-agent", "input": {}},
        {"agent": "echo", "input": {"text": "x", "steps": "many"}},
        5,
        {**ECHO, "idempotency_key": key},
        {**ECHO, "idempotency_key": key},
        {**ECHO, "queue": "nobody-consumes-this"},
        {"agent": "echo", "input": {"text": "x"}, "priority": 99},
    ]
    # when they are sent in one request
    r = bulk(web.url, items)
    # then each is answered in its place: the good ones with a job, the bad with an error
    assert r.status_code == 200, r.text
    body = r.json()
    results = body["results"]
    assert [x["status"] for x in results] == [202, 404, 422, 400, 202, 200, 422, 422]
    assert [x["error"]["code"] for x in results if "error" in x] == [
        "unknown_agent",
        "invalid_input",
        "bad_request",
        "invalid_input",
        "invalid_input",
    ]
    assert results[2]["error"]["field"] == "steps"
    assert results[6]["error"]["field"] == "queue"
    assert results[7]["error"]["field"] == "priority"
    # and the repeated idempotency key gave the job the first use of it made
    assert results[5]["id"] == results[4]["id"] and results[5]["created"] is False
    assert body["created"] == 2 and body["failed"] == 5
    # and the jobs made run to their end
    for made in (results[0], results[4]):
        assert made["state"] == "PENDING" and made["created"] is True
        assert state_is(web.url, made["id"], "SUCCESS")["agent"] == "echo"


def test_a_key_used_by_a_single_submission_returns_its_job_in_a_bulk(web: WebService) -> None:
    # given a job made with an idempotency key over POST /api/jobs
    key = f"single-{uuid.uuid4().hex}"
    single = http.post(f"{web.url}/api/jobs", json={**ECHO, "idempotency_key": key})
    assert single.status_code == 202, single.text
    # when a bulk names the same key
    r = bulk(web.url, [{**ECHO, "idempotency_key": key}])
    # then it answers with that job, not a new one
    assert r.status_code == 200, r.text
    [answer] = r.json()["results"]
    assert answer["status"] == 200 and answer["created"] is False
    assert answer["id"] == single.json()["id"]
    assert r.json()["created"] == 0


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"jobs": []}, 422, "invalid_input"),
        ({"jobs": {"agent": "echo"}}, 422, "invalid_input"),
        ({"no_jobs": [ECHO]}, 422, "invalid_input"),
        ([ECHO], 400, "bad_request"),
        ({"jobs": [{}] * 1001}, 413, "too_many_jobs"),
        ({"jobs": [ECHO, {**ECHO, "input": {"text": "\ud800"}}]}, 422, "invalid_input"),
    ],
)
def test_a_bad_list_is_refused_whole_and_stores_nothing(
    web: WebService, body: Any, status: int, code: str
) -> None:
    # given the jobs stored so far
    before = job_count(web.url)
    # when the list itself is bad (empty, not a list, too long, text SQL cannot hold)
    raw = json.dumps(body)  # a lone surrogate goes as its \ud800 escape
    r = http.post(
        f"{web.url}/api/jobs/bulk",
        data=raw,
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    # then the whole request gets the contract's error, naming the field
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["code"] == code
    if status == 413:
        assert error["limit"] == 1000 and "1000" in error["message"]
    if status == 422:
        assert error["field"].startswith("jobs")
    # and nothing was stored
    assert job_count(web.url) == before


def test_a_burst_of_single_and_bulk_submissions_all_run_and_are_recorded(
    web: WebService, worker: WorkerService, sql_engine: Engine
) -> None:
    # given 20 clients sending 10 jobs each, one at a time, and a bulk of 300 meanwhile
    accepted: list[str] = []
    refused: list[str] = []
    lock = threading.Lock()

    def one_by_one() -> None:
        with http.session() as s:
            for _ in range(10):
                r = s.post(f"{web.url}/api/jobs", json=ECHO, timeout=30)
                with lock:
                    (accepted if r.status_code == 202 else refused).append(
                        r.json()["id"] if r.status_code == 202 else r.text
                    )

    def in_bulk() -> None:
        r = bulk(web.url, [ECHO] * 300)
        with lock:
            if r.status_code != 200:
                refused.append(r.text)
                return
            for item in r.json()["results"]:
                (accepted if item["status"] == 202 else refused).append(item.get("id") or str(item))

    # when they all go at once
    threads = [threading.Thread(target=one_by_one) for _ in range(20)]
    threads.append(threading.Thread(target=in_bulk))
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    # then every one was accepted, each as a job of its own
    assert refused == []
    assert len(accepted) == 500 and len(set(accepted)) == 500
    # and every accepted job runs to its end and is recorded in SQL
    assert wait_until(lambda: final_in_sql(sql_engine, accepted) == 500, 180, interval=0.5), (
        final_in_sql(sql_engine, accepted)
    )
    with sql_engine.connect() as conn:
        states = conn.execute(
            select(Job.state, func.count()).where(Job.id.in_(accepted)).group_by(Job.state)
        ).all()
    assert dict(states) == {"SUCCESS": 500}
