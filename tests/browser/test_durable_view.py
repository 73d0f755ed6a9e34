"""Durable runs in the run view and the jobs page, in Chromium: a question answered
through the form its schema makes (422s at their fields), the run resuming live
with its replayed steps marked, child jobs linked both ways, and a retry from the
failed step (tests/durable_agents.py has the agents)."""

from __future__ import annotations

import json
import re
import time
import uuid
from pathlib import Path

import pytest
import redis
from playwright.sync_api import Page, expect
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from tests.browser.helpers import RECORDER_SCRIPT, Rest, expect_state, open_run_view
from tests.support import WebService, WorkerService
from workers.events import EventType
from workers.models import Job
from workers.publisher import get_publisher


@pytest.fixture
def rest(web: WebService) -> Rest:
    return Rest(web.url)


def count(client: redis.Redis, marker: str, step: str) -> int:
    return int(client.get(f"durable:{marker}:{step}") or 0)


def expect_suspended(page: Page, reason: str) -> None:
    """The header says the run is suspended, why, and that it holds no worker."""
    expect_state(page, "WAITING")
    banner = page.locator("#suspended")
    expect(banner).to_be_visible()
    expect(banner).to_have_attribute("data-reason", reason)
    expect(banner).to_contain_text("No worker is held")
    expect(page.locator("[data-fact=worker]")).to_have_text("none (suspended)")


def test_a_typed_question_is_answered_in_the_run_view_and_the_run_resumes_live(
    page: Page,
    web: WebService,
    worker: WorkerService,
    rest: Rest,
    redis_client: redis.Redis,
    screenshots: Path,
) -> None:
    # Given a run that did two recorded steps and asks a typed question {approve, note}
    marker = uuid.uuid4().hex
    job_id = rest.submit("steps_then_ask", {"marker": marker})["id"]
    page.add_init_script(RECORDER_SCRIPT)
    open_run_view(page, web.url, job_id)

    # Then the view shows it suspended, with a form made from the question's schema
    expect_suspended(page, "input")
    question = page.locator("#questions li.q[data-status=open]")
    expect(question.locator(".question")).to_have_text("approve the draft?")
    expect(page.locator("#ask-fields legend")).to_have_text("Your answer")
    expect(page.locator("#ask-approve")).to_have_attribute("type", "checkbox")
    expect(page.locator("#ask-note")).to_be_visible()
    suspended = page.locator("#timeline li[data-type='job.suspended']")
    expect(suspended.locator(".ev-sum")).to_contain_text("waiting for an answer · step 2")
    expect(page.locator("#steps li[data-kind=wait]")).to_have_count(1)
    page.evaluate("window.__sameDocument = true")
    page.screenshot(path=str(screenshots / "run-durable-question.png"), full_page=True)

    # And the jobs page says the suspended run holds no worker
    jobs = page.context.new_page()
    jobs.goto(f"{web.url}/?q={job_id}")
    expect(jobs.locator(f'tr[data-job="{job_id}"] td.wide')).to_have_text(
        "suspended: no worker held"
    )
    jobs.close()

    # When the question is answered through the form
    page.check("#ask-approve")
    page.fill("#ask-note", "ship it")
    page.click("#ask-send")

    # Then the run resumes and ends, live, without a reload
    expect_state(page, "SUCCESS")
    assert page.evaluate("window.__sameDocument") is True, "the page was reloaded"
    states = page.evaluate("window.__states")
    assert "WAITING" in states and states.index("WAITING") < states.index("SUCCESS"), states
    expect(page.locator("#suspended")).to_be_hidden()
    expect(page.locator("[data-fact=worker]")).not_to_have_text("none (suspended)")
    # the resumption on the timeline, with why and how long the run waited
    resumed = page.locator("#timeline li[data-type='job.resumed'] .ev-sum")
    expect(resumed).to_have_text(re.compile(r"^answered · waited [0-9.]+ (ms|s) · run 1$"))
    expect(page.locator("#timeline li[data-type='input.received']")).to_have_count(1)
    # the steps the second run replayed are marked, in the timeline and the waterfall;
    # the step after the question ran for real
    replayed = page.locator("#timeline li[data-replayed=true]")
    expect(replayed).to_have_count(4)  # draft started/finished, lookup called/returned
    expect(replayed.first.locator(".tag-replayed")).to_have_text("replayed")
    expect(page.locator("#steps li[data-step=draft]")).to_have_count(2)
    expect(page.locator("#steps li[data-step=draft][data-replayed=true]")).to_have_count(1)
    expect(page.locator("#steps li[data-step=act]")).to_have_count(1)
    expect(page.locator("#steps li[data-step=act][data-replayed]")).to_have_count(0)
    expect(page.locator("#tools li.tool[data-replayed=true] code")).to_have_text("lookup")
    expect(page.locator("#steps li[data-kind=wait] .wf-dur")).not_to_have_text("waiting…")
    # and the answered question stays in view with its answer; no form is left
    done = page.locator("#questions li.q[data-status=answered]")
    expect(done.locator(".question")).to_have_text("approve the draft?")
    answer = json.loads(done.locator(".q-answer").inner_text())
    assert answer == {"approve": True, "note": "ship it"}
    expect(page.locator("#ask-form")).to_have_count(0)
    result = json.loads(page.locator("#result").inner_text())
    assert result["approve"] is True and result["act"] == "acted"
    assert [count(redis_client, marker, s) for s in ("draft", "lookup", "act")] == [1, 1, 1]
    page.screenshot(path=str(screenshots / "run-durable-resumed.png"), full_page=True)


def test_an_answer_outside_the_schema_is_refused_at_its_field(
    page: Page, web: WebService, worker: WorkerService, rest: Rest, screenshots: Path
) -> None:
    # Given a run asking for a score from 1 to 5 (a JSON Schema question)
    job_id = rest.submit("asks_for_a_score", {})["id"]
    open_run_view(page, web.url, job_id)
    expect_suspended(page, "input")
    expect(page.locator("#ask-score")).to_have_attribute("type", "number")

    # When a score out of range is sent
    page.fill("#ask-score", "9")
    page.click("#ask-send")

    # Then the server's 422 is shown at the score field, which gets the focus,
    # and the run still waits
    error = page.locator("#ask-score-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("maximum of 5")
    expect(page.locator("#ask-score")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#ask-score")).to_be_focused()
    expect(page.locator("#ask-error")).to_be_hidden()
    page.screenshot(path=str(screenshots / "run-durable-answer-error.png"), full_page=True)
    expect_state(page, "WAITING")

    # And when a good one is sent, the error goes and the run ends with it
    page.fill("#ask-score", "4")
    page.fill("#ask-why", "clear enough")
    page.click("#ask-send")
    expect_state(page, "SUCCESS")
    assert json.loads(page.locator("#result").inner_text()) == {"score": 4, "why": "clear enough"}
    expect(page.locator("#questions li.q[data-status=answered] .q-answer")).to_contain_text(
        '"score": 4'
    )


def test_a_question_without_a_schema_takes_free_text(
    page: Page, web: WebService, worker: WorkerService, rest: Rest
) -> None:
    # Given a run asking a question without a schema
    job_id = rest.submit("shifty", {"marker": uuid.uuid4().hex})["id"]
    open_run_view(page, web.url, job_id)
    expect_suspended(page, "input")

    # When it is answered with text that is not JSON, marked as JSON: refused in the page
    page.fill("#ask-answer", "yes please")
    page.check("#ask-json")
    page.click("#ask-send")
    expect(page.locator("#ask-answer-error")).to_have_text("Not valid JSON.")

    # Then as plain text it is sent, and the run ends
    page.uncheck("#ask-json")
    page.click("#ask-send")
    expect_state(page, "SUCCESS")
    expect(page.locator("#questions li.q[data-status=answered] .q-answer")).to_have_text(
        "yes please"
    )


def test_a_sleeping_run_says_until_when_and_wakes_live(
    page: Page, web: WebService, worker: WorkerService, rest: Rest
) -> None:
    # Given a run that sleeps 3 s without a worker, in its run view
    job_id = rest.submit("nap", {"marker": uuid.uuid4().hex, "seconds": 3})["id"]
    open_run_view(page, web.url, job_id)

    # Then the header says it sleeps, until when, holding no worker
    expect_suspended(page, "sleep")
    expect(page.locator("#suspended")).to_contain_text("sleeping until")
    expect(page.locator("#suspended .susp-until")).to_contain_text("Wakes")
    suspended = page.locator("#timeline li[data-type='job.suspended'] .ev-sum")
    expect(suspended).to_contain_text("sleeping until")

    # And when its time comes it resumes and ends, saying how long it slept
    expect_state(page, "SUCCESS")
    resumed = page.locator("#timeline li[data-type='job.resumed'] .ev-sum")
    expect(resumed).to_have_text(re.compile(r"^woke up · waited \d+\.\d+ s · run 1$"))
    waited = re.search(r"waited ([\d.]+) s", resumed.inner_text())
    # (from when the wait was recorded, a moment after the 3 s began)
    assert waited is not None and float(waited.group(1)) >= 2.5, resumed.inner_text()
    expect(page.locator("#suspended")).to_be_hidden()


def test_a_parent_lists_its_children_live_and_each_links_back(
    page: Page, web: WebService, worker: WorkerService, rest: Rest, screenshots: Path
) -> None:
    # Given a parent that spawns two children, each holding a worker for a while
    # (3 s: the suspended header is checked while they run, even on a slow machine)
    parent = rest.submit("waits_for_sleepers", {"n": 2, "seconds": 3.0})["id"]
    page.add_init_script(
        """
        window.__childStates = {};
        document.addEventListener("DOMContentLoaded", () => {
          const list = document.getElementById("children");
          if (!list) return; // not a run view
          new MutationObserver(() => {
            for (const li of list.querySelectorAll("li[data-job]")) {
              const seen = (window.__childStates[li.dataset.job] ||= []);
              if (seen[seen.length - 1] !== li.dataset.state) seen.push(li.dataset.state);
            }
          }).observe(list, { subtree: true, childList: true, attributes: true });
        });
        """
    )

    # When its run view is open
    open_run_view(page, web.url, parent)

    # Then it lists both children, and follows their states live to SUCCESS
    kids = page.locator("#children li.child")
    expect(kids).to_have_count(2)
    expect(page.locator("#children-count")).to_have_text("(2)")
    expect_suspended(page, "children")
    for i in range(2):
        expect(kids.nth(i)).to_have_attribute("data-state", "SUCCESS")
        expect(kids.nth(i).locator(".badge")).to_have_text("SUCCESS")
        expect(kids.nth(i).locator(".child-agent")).to_have_text("sleep")
    expect_state(page, "SUCCESS")
    seen: dict[str, list[str]] = page.evaluate("window.__childStates")
    assert len(seen) == 2 and all(s[-1] == "SUCCESS" for s in seen.values()), seen
    assert any("STARTED" in s for s in seen.values()), f"no child was seen running: {seen}"
    spawned = page.locator("#timeline li[data-type='child.spawned']")
    expect(spawned).to_have_count(2)
    resumed = page.locator("#timeline li[data-type='job.resumed'] .ev-sum")
    expect(resumed).to_contain_text("child jobs ended · waited")
    page.screenshot(path=str(screenshots / "run-durable-children.png"), full_page=True)
    child_ids = kids.evaluate_all("items => items.map(li => li.dataset.job)")
    spawns = [s for s in rest.job(parent)["steps"] if s["kind"] == "spawn"]
    assert set(child_ids) == {s["result"] for s in spawns}

    # And a child's link opens its run view, which links back to the parent
    kids.first.locator("a.child-link").click()
    page.wait_for_url(f"**/jobs/{child_ids[0]}")
    expect_state(page, "SUCCESS")
    expect(page.locator("#fact-parent")).to_be_visible()
    expect(page.locator("#parent-link")).to_have_text(parent[:8])
    page.click("#parent-link")
    page.wait_for_url(f"**/jobs/{parent}")
    expect(page.locator("#children li.child")).to_have_count(2)

    # And the jobs page lists the children of the parent, each naming it
    page.click("#children-list-link")
    page.wait_for_url(re.compile(r"/\?parent="))
    expect(page.locator("#parent-filter")).to_be_visible()
    expect(page.locator("#jobs tbody tr")).to_have_count(2)
    for child in child_ids:
        row = page.locator(f'tr[data-job="{child}"]')
        expect(row.locator(".child-of a")).to_have_text(parent[:8])


def test_a_failed_run_is_retried_from_its_failed_step_in_the_run_view(
    page: Page,
    web: WebService,
    worker: WorkerService,
    rest: Rest,
    redis_client: redis.Redis,
    screenshots: Path,
) -> None:
    # Given a run whose second recorded step failed, in its run view
    marker = uuid.uuid4().hex
    first = rest.submit("fails_at_two", {"marker": marker})["id"]
    open_run_view(page, web.url, first)
    expect_state(page, "FAILURE")

    # Then both retries are offered, the one from the failed step saying what it replays
    expect(page.locator("#retry")).to_have_text("Retry from start")
    expect(page.locator("#retry")).to_be_enabled()
    expect(page.locator("#retry-failed")).to_be_visible()
    expect(page.locator("#retry-failed")).to_be_enabled()
    expect(page.locator("#retry-failed-hint")).to_have_text(
        "Replays 1 recorded step (one) without running it, then runs “two” again."
    )
    # and the step that raised shows as failed (its step.finished carries the error)
    expect(page.locator("#steps li[data-step=two]")).to_have_class(re.compile(r"\bfailed\b"))
    page.screenshot(path=str(screenshots / "run-durable-failed.png"), full_page=True)

    # When step two is fixed and the run retried from its failed step
    redis_client.set(f"durable:{marker}:fixed", "1")
    page.click("#retry-failed")

    # Then the new run links back to the old, replays step one and runs step two again
    expect(page.locator("#action-outcome")).to_contain_text("Retried from the failed step as")
    page.click("#retry-link")
    page.wait_for_url(re.compile(r"/jobs/[^/?#]+$"))
    assert not page.url.endswith(first)
    expect_state(page, "SUCCESS")
    expect(page.locator("#retry-of-link")).to_have_text(first[:8])
    expect(page.locator("#steps li[data-step=one][data-replayed=true]")).to_have_count(1)
    expect(page.locator("#steps li[data-step=two]")).to_have_count(1)
    expect(page.locator("#steps li[data-step=two][data-replayed]")).to_have_count(0)
    expect(page.locator("#retry-failed")).to_be_hidden()
    assert count(redis_client, marker, "one") == 1
    assert count(redis_client, marker, "two") == 2
    page.screenshot(path=str(screenshots / "run-durable-retried.png"), full_page=True)


def test_a_suspended_run_and_its_question_fit_a_phone(
    phone: Page, web: WebService, worker: WorkerService, rest: Rest, screenshots: Path
) -> None:
    # Given a suspended run with a typed question, on a 390 px phone
    job_id = rest.submit("steps_then_ask", {"marker": uuid.uuid4().hex})["id"]
    open_run_view(phone, web.url, job_id)
    expect_suspended(phone, "input")
    expect(phone.locator("#ask-approve")).to_be_visible()
    phone.screenshot(path=str(screenshots / "phone-run-durable-question.png"), full_page=True)

    # Then nothing is wider than the screen, before or after the answer
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    phone.check("#ask-approve")
    phone.click("#ask-send")
    expect_state(phone, "SUCCESS")
    expect(phone.locator("#timeline li[data-replayed=true]")).to_have_count(4)
    phone.screenshot(path=str(screenshots / "phone-run-durable-resumed.png"), full_page=True)
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390


def test_an_answer_said_after_the_resumed_run_ended_still_shows_with_its_question(
    page: Page, web: WebService, sql_engine: Engine
) -> None:
    # Given a suspended question, in its run view (a job of the history: no worker runs it)
    job_id = str(uuid.uuid4())
    with Session(sql_engine) as s, s.begin():
        s.add(Job(id=job_id, name="agentdeck.run_agent", agent="asker", state="PENDING",
                  input={}, retries=0, last_seq=0, created_at=time.time()))  # fmt: skip
    emit = get_publisher().emit
    queued = {"name": "agentdeck.run_agent", "agent": "asker", "input": {}, "root_id": job_id}
    started = {"worker": "celery@w1", "pid": 1, "retries": 0}
    emit(job_id, EventType.JOB_QUEUED, queued, wait=True)
    emit(job_id, EventType.JOB_STARTED, started, wait=True)
    emit(job_id, EventType.INPUT_REQUESTED, {"question": "go?", "schema": None, "step": 0})
    emit(job_id, EventType.JOB_SUSPENDED, {"reason": "input", "step": 0}, wait=True)
    open_run_view(page, web.url, job_id)
    expect_suspended(page, "input")

    # When the resumed run ends before the web says input.received and job.resumed
    # (the web sends the run first; a quick run can end before it says so)
    emit(job_id, EventType.JOB_QUEUED, {**queued, "kwargs": "{'run': 1}"})
    emit(job_id, EventType.JOB_STARTED, started)
    emit(job_id, EventType.JOB_SUCCEEDED, {"result": "went"})
    emit(job_id, EventType.INPUT_RECEIVED, {"answer": "yes", "step": 0})
    emit(
        job_id, EventType.JOB_RESUMED, {"reason": "input", "step": 0, "waited_ms": 1500.0, "run": 1}
    )
    assert get_publisher().flush(timeout=5)

    # Then the question still shows its answer, the job SUCCESS and no longer suspended
    expect_state(page, "SUCCESS")
    expect(page.locator("#questions li.q[data-status=answered] .q-answer")).to_have_text("yes")
    expect(page.locator("#suspended")).to_be_hidden()
    resumed = page.locator("#timeline li[data-type='job.resumed'] .ev-sum")
    expect(resumed).to_have_text("answered · waited 1.50 s · run 1")
