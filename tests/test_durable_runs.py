"""Durable runs on real workers: recorded steps run once, waits free the worker, runs
resume where they stopped (docs/agents.md)."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import redis

from launcher.net import wait_until
from tests.support import WebService, WorkerService, http
from tests.support.follow import JobView
from tests.support.jobs import state_is, submit, suspended
from tests.support.ws import WsClient


def count(client: redis.Redis, marker: str, step: str) -> int:
    return int(client.get(f"durable:{marker}:{step}") or 0)


def test_recorded_steps_run_once_and_a_typed_question_frees_the_worker(
    web: WebService, worker: WorkerService, redis_client: redis.Redis
) -> None:
    # given a run that did two recorded steps and asks a typed question
    marker = uuid.uuid4().hex
    job_id = submit(web.url, "steps_then_ask", marker=marker)
    suspended(web.url, job_id)
    assert state_is(web.url, job_id, "WAITING")["state"] == "WAITING"
    # then the worker is free: another job runs to its end meanwhile
    other = submit(web.url, "echo", text="meanwhile", steps=1, delay=0)
    state_is(web.url, other, "SUCCESS")
    # when an answer that does not fit the schema comes, it is refused at its field
    url = f"{web.url}/api/jobs/{job_id}/input"
    bad = http.post(url, json={"answer": {"approve": "perhaps"}})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "answer.approve"
    # when a good one comes, the run resumes and ends
    assert http.post(url, json={"answer": {"approve": True}}).status_code == 202
    final = state_is(web.url, job_id, "SUCCESS", "FAILURE")
    assert final["state"] == "SUCCESS", final
    assert final["result"] == {
        "draft": {"text": "draft 1"}, "lookup": {"q": "x"}, "approve": True, "act": "acted",
    }  # fmt: skip
    # and each recorded step ran exactly once, across both runs
    assert [count(redis_client, marker, s) for s in ("draft", "lookup", "act")] == [1, 1, 1]
    # and the API lists the recorded steps
    kinds = [(s["kind"], s["status"]) for s in final["steps"]]
    assert kinds == [("run", "done"), ("tool", "done"), ("ask", "done"), ("run", "done")]


def test_the_events_of_all_runs_are_one_contiguous_stream_with_replays_marked(
    web: WebService, worker: WorkerService
) -> None:
    # given a client following a run from its start
    marker = uuid.uuid4().hex
    job_id = submit(web.url, "steps_then_ask", marker=marker)
    ws = WsClient(web.url)
    view = JobView(web.url, job_id)
    view.subscribe(ws)
    suspended(web.url, job_id)
    # when it is answered and resumes
    http.post(f"{web.url}/api/jobs/{job_id}/input", json={"answer": {"approve": False}})
    view.run(ws, timeout=60)
    ws.close()
    # then the client saw every event once, in order, suspension and resumption included
    assert view.seqs() == list(range(1, view.last + 1)) and view.gaps == view.dups == 0
    types = [view.events[s]["type"] for s in view.seqs()]
    assert "job.suspended" in types and "job.resumed" in types
    assert types.index("job.suspended") < types.index("input.received") < types.index("job.resumed")
    replayed = [view.events[s]["data"] for s in view.seqs() if view.events[s]["type"] in (
        "step.finished", "tool.returned") and view.events[s]["data"].get("replayed")]  # fmt: skip
    assert {d.get("name") or d.get("tool") for d in replayed} == {"draft", "lookup"}


def test_two_answers_at_once_resume_the_run_exactly_once(
    web: WebService, worker: WorkerService
) -> None:
    # given a suspended run
    job_id = submit(web.url, "steps_then_ask", marker=uuid.uuid4().hex)
    suspended(web.url, job_id)
    # when two answers arrive together
    codes: list[int] = []

    def answer(approve: bool) -> None:
        r = http.post(f"{web.url}/api/jobs/{job_id}/input", json={"answer": {"approve": approve}})
        codes.append(r.status_code)

    threads = [threading.Thread(target=answer, args=(v,)) for v in (True, False)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    # then one is taken and one refused, and the run resumed once
    assert sorted(codes) == [202, 409]
    final = state_is(web.url, job_id, "SUCCESS", "FAILURE")
    events = http.get(f"{web.url}/api/jobs/{job_id}/events").json()["events"]
    assert [e["type"] for e in events].count("job.resumed") == 1
    assert final["state"] == "SUCCESS"


def test_an_answer_before_the_question_is_refused_and_changes_nothing(
    web: WebService, worker: WorkerService
) -> None:
    # given a job that has not reached its question (it is a plain echo here)
    job_id = submit(web.url, "echo", text="x", steps=1, delay=0)
    state_is(web.url, job_id, "SUCCESS")
    # when an answer comes, then 409 and nothing resumes
    r = http.post(f"{web.url}/api/jobs/{job_id}/input", json={"answer": 1})
    assert r.status_code == 409 and r.json()["error"]["code"] == "not_waiting"


def test_a_sleep_suspends_and_wakes_on_time(
    web: WebService, worker: WorkerService, redis_client: redis.Redis
) -> None:
    marker = uuid.uuid4().hex
    job_id = submit(web.url, "nap", marker=marker, seconds=3)
    suspended(web.url, job_id)
    assert count(redis_client, marker, "after") == 0
    final = state_is(web.url, job_id, "SUCCESS", "FAILURE", timeout=30)
    assert final["state"] == "SUCCESS" and 3 <= final["result"] < 15
    assert count(redis_client, marker, "after") == 1


def test_children_are_waited_for_without_a_worker_and_their_results_returned(
    web: WebService, worker: WorkerService
) -> None:
    parent = submit(web.url, "parent_of", texts=["a b", "c"])
    final = state_is(web.url, parent, "SUCCESS", "FAILURE", timeout=60)
    assert final["state"] == "SUCCESS", final
    assert final["result"] == ["a b", "c"]
    kids = http.get(f"{web.url}/api/jobs", params={"q": ""}).json()["jobs"]
    assert sum(1 for k in kids if k["parent_id"] == parent) == 2


def test_a_failed_child_fails_its_parent_naming_it(web: WebService, worker: WorkerService) -> None:
    parent = submit(web.url, "parent_of", texts=["ok"], fail_one=True)
    final = state_is(web.url, parent, "SUCCESS", "FAILURE", timeout=60)
    assert final["state"] == "FAILURE"
    assert "ChildFailed" in final["error"] and "child job" in final["error"]


def test_retry_from_the_failed_step_replays_the_steps_before_it(
    web: WebService, worker: WorkerService, redis_client: redis.Redis
) -> None:
    # given a run whose second step failed
    marker = uuid.uuid4().hex
    first = submit(web.url, "fails_at_two", marker=marker)
    assert state_is(web.url, first, "FAILURE", "SUCCESS")["state"] == "FAILURE"
    # when step two is fixed and the job is retried from the failure
    redis_client.set(f"durable:{marker}:fixed", "1")
    r = http.post(f"{web.url}/api/jobs/{first}/retry", json={"from": "failure"})
    assert r.status_code == 202, r.text
    second = r.json()["id"]
    # then the new run succeeds, and step one did not run again
    assert state_is(web.url, second, "SUCCESS", "FAILURE")["state"] == "SUCCESS"
    assert count(redis_client, marker, "one") == 1
    assert count(redis_client, marker, "two") == 2


def test_a_run_asking_for_other_steps_than_recorded_fails_clearly(
    web: WebService, worker: WorkerService, redis_client: redis.Redis
) -> None:
    marker = uuid.uuid4().hex
    job_id = submit(web.url, "shifty", marker=marker)
    suspended(web.url, job_id)
    redis_client.set(f"durable:{marker}:name", "second")
    http.post(f"{web.url}/api/jobs/{job_id}/input", json={"answer": "yes"})
    final = state_is(web.url, job_id, "FAILURE", "SUCCESS")
    assert final["state"] == "FAILURE"
    assert "non-deterministic replay at step 0" in final["error"] and "'first'" in final["error"]


def test_cancelling_a_suspended_run_ends_it_and_no_answer_resumes_it(
    web: WebService, worker: WorkerService
) -> None:
    job_id = submit(web.url, "steps_then_ask", marker=uuid.uuid4().hex)
    suspended(web.url, job_id)
    assert http.post(f"{web.url}/api/jobs/{job_id}/cancel").status_code == 202
    assert state_is(web.url, job_id, "REVOKED")["state"] == "REVOKED"
    r = http.post(f"{web.url}/api/jobs/{job_id}/input", json={"answer": {"approve": True}})
    assert r.status_code == 409


def test_a_worker_process_killed_in_a_step_resumes_after_the_last_recorded_one(
    web: WebService, worker: WorkerService, redis_client: redis.Redis
) -> None:
    marker = uuid.uuid4().hex
    job_id = submit(web.url, "dies_in_two", marker=marker)
    final = state_is(web.url, job_id, "SUCCESS", "FAILURE", timeout=90)
    assert final["state"] == "SUCCESS", final
    assert count(redis_client, marker, "one") == 1  # recorded before the crash: not rerun
    assert count(redis_client, marker, "two") == 2  # in flight when killed: run again


def test_cancelling_a_parent_cancels_its_children(web: WebService, worker: WorkerService) -> None:
    # given a parent suspended on two children that are still running
    parent = submit(web.url, "waits_for_sleepers", n=2, seconds=30)
    suspended(web.url, parent)

    def children() -> list[dict[str, Any]]:
        kids = http.get(f"{web.url}/api/jobs", params={"parent": parent}).json()["jobs"]
        return list(kids)

    assert wait_until(lambda: len(children()) == 2, 30)
    # when the parent is cancelled
    assert http.post(f"{web.url}/api/jobs/{parent}/cancel").status_code == 202
    # then it and both children end cancelled
    assert state_is(web.url, parent, "REVOKED")["state"] == "REVOKED"
    for kid in children():
        assert state_is(web.url, kid["id"], "REVOKED", "SUCCESS", "FAILURE")["state"] == "REVOKED"
