"""The pages in real Chromium: submit, watch live, cancel, field errors, text only."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.helpers import (
    FINAL,
    RECORDER_SCRIPT,
    Rest,
    expect_state,
    open_run_view,
    wait_for_state,
)
from tests.support import WebService, WorkerService

WORKER_SLOTS = 2  # WorkerService's default concurrency

SUCCESS_GREEN = "rgb(16, 185, 129)"


@pytest.fixture
def rest(web: WebService) -> Rest:
    return Rest(web.url)


@pytest.fixture
def busy_worker(rest: Rest, web: WebService, worker: WorkerService) -> Iterator[list[str]]:
    """Every worker slot runs a long `sleep`, so a new job stays PENDING until we free one."""
    sleepers = [rest.submit("sleep", {"seconds": 60})["id"] for _ in range(WORKER_SLOTS)]
    for job_id in sleepers:
        wait_for_state(web.url, job_id, ("STARTED",))
    yield sleepers
    for job_id in sleepers:
        rest.cancel(job_id, check=False)


def test_submit_echo_through_the_form_shows_states_and_output_live(
    page: Page, web: WebService, rest: Rest, busy_worker: list[str], screenshots: Path
) -> None:
    # Given the submit page for echo, and a worker busy with other jobs for now
    text = "agents stream their words one chunk at a time"
    page.add_init_script(RECORDER_SCRIPT)
    page.goto(f"{web.url}/submit?agent=echo")
    page.fill("#in-text", text)
    page.fill("#in-steps", "2")
    page.fill("#in-delay", "0.2")

    # When the form is submitted
    page.click("#submit-btn")

    # Then the run view of the new job opens, showing it PENDING
    page.wait_for_url(re.compile(r"/jobs/[^/?#]+$"))
    expect_state(page, "PENDING")
    page.evaluate("window.__sameDocument = true")

    # And when the worker is free, it goes STARTED then SUCCESS without a reload
    for job_id in busy_worker:
        rest.cancel(job_id)
    expect_state(page, "SUCCESS")
    expect(page.locator("#output")).to_have_text(text)
    assert page.evaluate("window.__sameDocument") is True, "the page was reloaded"
    states = page.evaluate("window.__states")
    assert [s for s in states if s in ("PENDING", "STARTED", "SUCCESS")] == [
        "PENDING",
        "STARTED",
        "SUCCESS",
    ], states
    lengths: list[int] = page.evaluate("window.__outputLengths")
    assert lengths == sorted(lengths), f"output shrank: {lengths}"
    assert len(set(lengths)) >= len(text.split(" ")), f"output did not grow by chunks: {lengths}"
    expect(page.locator("#steps li")).to_have_count(2)
    expect(page.locator("#progress")).to_have_attribute("value", "2")
    page.screenshot(path=str(screenshots / "run-echo-submitted.png"), full_page=True)


def test_jobs_page_shows_a_job_submitted_over_rest_appear_and_change_state(
    page: Page, web: WebService, worker: WorkerService, rest: Rest
) -> None:
    # Given the jobs page, open and live
    page.add_init_script(RECORDER_SCRIPT)
    page.goto(web.url)
    expect(page.locator("#conn")).to_have_attribute("data-status", "live")
    success = page.locator('[data-count="SUCCESS"]')
    expect(success).to_have_text(re.compile(r"^\d+$"))
    before = int(success.inner_text())

    # When a job is submitted over REST
    job = rest.submit("echo", {"text": "hello from rest", "steps": 2, "delay": 0.3})

    # Then its row appears and its badge follows the job to SUCCESS, in green
    row = page.locator(f'tr[data-job="{job["id"]}"]')
    expect(row).to_be_visible()
    expect(row).to_have_attribute("data-state", "SUCCESS")
    expect(row.locator(".badge")).to_have_css("background-color", SUCCESS_GREEN)
    expect(success).to_have_text(str(before + 1))
    seen = page.evaluate(f"window.__rowStates[{job['id']!r}]")
    # (states a few ms apart may reach the page in one frame: the row shows the last)
    assert seen[0] in ("PENDING", "RECEIVED", "STARTED") and seen[-1] == "SUCCESS", seen
    assert page.locator("tbody tr").first.get_attribute("data-job") == job["id"]


def test_cancelling_a_sleep_job_from_its_run_view_ends_revoked(
    page: Page, web: WebService, worker: WorkerService, rest: Rest
) -> None:
    # Given a sleep job running, watched in its run view
    job = rest.submit("sleep", {"seconds": 60})
    open_run_view(page, web.url, job["id"])
    expect_state(page, "STARTED")

    # When Cancel is pressed
    page.click("#cancel")

    # Then the page shows the job REVOKED, says so, and offers Retry instead
    expect_state(page, "REVOKED")
    expect(page.locator("#action-outcome")).to_contain_text("Cancelled")
    expect(page.locator("#cancel")).to_be_hidden()
    expect(page.locator("#retry")).to_be_enabled()
    expect(page.locator("#timeline li[data-type='job.cancelled']")).to_have_count(1)


def test_a_schema_violation_shows_the_error_at_its_field(
    page: Page, web: WebService, worker: WorkerService
) -> None:
    # Given the echo form with the required text left empty
    page.goto(f"{web.url}/submit?agent=echo")
    expect(page.locator("#in-text")).to_be_visible()

    # When it is submitted
    page.click("#submit-btn")

    # Then the server's error is shown at the text field, which gets the focus
    error = page.locator("#in-text-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text(re.compile("required", re.I))
    expect(page.locator("#in-text")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#in-text")).to_be_focused()
    assert page.url.endswith("/submit?agent=echo")

    # And a wrong type is reported at its own field once the text is given
    page.fill("#in-text", "now with text")
    page.fill("#in-steps", "2.5")
    page.click("#submit-btn")
    expect(page.locator("#in-steps-error")).to_contain_text(re.compile("integer", re.I))
    expect(page.locator("#in-text-error")).to_be_hidden()
    assert "/submit" in page.url


def test_markup_in_agent_output_is_shown_as_text_and_runs_nothing(
    page: Page, web: WebService, worker: WorkerService, rest: Rest
) -> None:
    # Given jobs whose output, result and error are made of markup
    payload = '<script>window.__xss=1</script> <img src=x onerror="window.__xss=2"> <b>bold</b>'
    echo = rest.submit("echo", {"text": payload, "steps": 1, "delay": 0})
    fail = rest.submit("fail", {"message": '<img src=x onerror="window.__xss=3">'})

    # When their run views show them
    open_run_view(page, web.url, echo["id"])
    expect_state(page, "SUCCESS")

    # Then the characters are on screen, and no element was made from them
    expect(page.locator("#output")).to_have_text(payload)
    expect(page.locator("#result")).to_have_text(payload)
    expect(page.locator("#timeline")).to_contain_text("<script>window.__xss=1</script>")
    assert page.locator("main script, main img, main b").count() == 0
    assert page.evaluate("window.__xss") is None

    open_run_view(page, web.url, fail["id"])
    expect_state(page, "FAILURE")
    expect(page.locator("#error")).to_have_text(
        'RuntimeError: <img src=x onerror="window.__xss=3">'
    )
    assert page.locator("main img").count() == 0
    assert page.evaluate("window.__xss") is None


def test_the_form_can_be_used_with_the_keyboard_alone(
    page: Page, web: WebService, worker: WorkerService
) -> None:
    # Given the submit page with the focus on the agent picker
    page.goto(f"{web.url}/submit?agent=echo")
    expect(page.locator("#in-text")).to_be_visible()
    page.focus("#agent")

    # When the fields are reached with Tab and the form sent with Enter
    page.keyboard.press("Tab")
    expect(page.locator("#in-text")).to_be_focused()
    page.keyboard.type("typed with keys")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")

    # Then the job runs and its run view shows it
    page.wait_for_url(re.compile(r"/jobs/[^/?#]+$"))
    expect_state(page, "SUCCESS")
    expect(page.locator("#output")).to_have_text("typed with keys")


def test_a_question_from_the_agent_is_answered_from_the_run_view(
    page: Page, web: WebService, worker: WorkerService, rest: Rest
) -> None:
    # Given a job whose agent asks a person a question, watched in its run view
    job = rest.submit("ask", {"question": "<b>Deploy</b> to production?"})
    open_run_view(page, web.url, job["id"])

    # Then the page shows it WAITING with the question, as text
    expect_state(page, "WAITING")
    expect(page.locator("#ask-panel")).to_be_visible()
    question = page.locator("#questions li.q .question")
    expect(question).to_have_text("<b>Deploy</b> to production?")
    assert page.locator("#questions b").count() == 0

    # When the answer is typed and sent
    page.fill("#ask-answer", "yes, go")
    page.click("#ask-send")

    # Then the job carries on to SUCCESS with the answer as its result, and the
    # question stays in view with its answer, its form gone
    expect_state(page, "SUCCESS")
    expect(page.locator("#questions li.q[data-status=answered] .q-answer")).to_have_text("yes, go")
    expect(page.locator("#ask-form")).to_have_count(0)
    expect(page.locator("#result")).to_have_text("yes, go")


def test_logs_are_filtered_by_level_and_the_error_shows_its_traceback(
    page: Page, web: WebService, worker: WorkerService, rest: Rest
) -> None:
    # Given a failed job that logged a warning, in its run view
    job = rest.submit("fail", {"message": "the tool answered 503"})
    open_run_view(page, web.url, job["id"])
    expect_state(page, "FAILURE")
    warning = page.locator("#logs li.log-warning")
    expect(warning).to_contain_text("failing on purpose")

    # When only errors are asked for, the warning is hidden; from warnings up, shown again
    page.select_option("#log-level", "error")
    expect(warning).to_be_hidden()
    page.select_option("#log-level", "warning")
    expect(warning).to_be_visible()

    # And the error panel has the message, the traceback one click away
    expect(page.locator("#error")).to_have_text("RuntimeError: the tool answered 503")
    expect(page.locator("#traceback")).to_be_hidden()
    page.click("#error-panel summary")
    expect(page.locator("#traceback")).to_contain_text("Traceback (most recent call last)")
    expect(page.locator("#steps li")).to_have_count(1)
    expect(page.locator("#retry")).to_be_enabled()


def test_retry_from_the_run_view_links_to_the_new_run(
    page: Page, web: WebService, worker: WorkerService, rest: Rest
) -> None:
    # Given a failed job in its run view
    job = rest.submit("fail", {"message": "try me again"})
    open_run_view(page, web.url, job["id"])
    expect_state(page, "FAILURE")

    # When Retry is pressed
    page.click("#retry")

    # Then the outcome links to the new run, which opens and runs the same input
    link = page.locator("#retry-link")
    expect(link).to_be_visible()
    new_id = link.inner_text()
    assert new_id and new_id != job["id"]
    link.click()
    page.wait_for_url(f"**/jobs/{new_id}")
    expect_state(page, "FAILURE")
    expect(page.locator("#error")).to_have_text("RuntimeError: try me again")


def test_jobs_page_filters_by_agent_and_state_searches_and_pages(
    page: Page, web: WebService, worker: WorkerService, rest: Rest
) -> None:
    # Given two failed jobs and, newest, a successful one
    fails = [rest.submit("fail", {"message": f"failure {i}"})["id"] for i in range(2)]
    echo = rest.submit("echo", {"text": "ok", "steps": 0, "delay": 0})["id"]
    for job_id in [*fails, echo]:
        wait_for_state(web.url, job_id, FINAL)
    rows = page.locator("#jobs tbody tr")

    # When the list shows one job a page, Older and Newer walk through them
    page.goto(f"{web.url}/?limit=1")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-job", echo)
    page.click("#older")
    expect(rows.first).to_have_attribute("data-job", fails[1])
    page.click("#older")
    expect(rows.first).to_have_attribute("data-job", fails[0])
    page.click("#newer")
    expect(rows.first).to_have_attribute("data-job", fails[1])
    page.click("#newer")
    expect(rows.first).to_have_attribute("data-job", echo)
    expect(page.locator("#newer")).to_be_disabled()

    # When filtered by agent, only that agent's jobs are listed
    page.goto(web.url)
    page.select_option("#filters select[name=agent]", "fail")
    expect(page).to_have_url(re.compile(r"agent=fail"))
    expect(rows.first).to_have_attribute("data-job", fails[1])
    for text in rows.locator("td:nth-child(2)").all_inner_texts():
        assert text == "fail"

    # When a state's counter is clicked, only jobs in that state are listed
    page.click('a.count[data-state="SUCCESS"]')
    expect(page).to_have_url(re.compile(r"state=SUCCESS"))
    expect(rows).to_have_count(0)
    expect(page.locator("#jobs-empty")).to_be_visible()
    page.click("#filters button[type=reset]")
    expect(rows.first).to_have_attribute("data-job", echo)

    # When searching for part of an id, that job is found
    page.fill("#filters input[name=q]", fails[0][:13])
    page.keyboard.press("Enter")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-job", fails[0])
