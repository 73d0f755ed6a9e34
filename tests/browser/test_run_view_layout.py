"""The run view as a user saw it (issue 13): the timeline follows, lists are not cut off,
a finished job shows no Cancel and no "yet", and a success completes the progress bar."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.helpers import Rest, expect_state, open_run_view
from tests.support import WebService, WorkerService

AT_BOTTOM = "n => n.scrollHeight - n.scrollTop - n.clientHeight < 40"


@pytest.fixture
def rest(web: WebService) -> Rest:
    return Rest(web.url)


def _row_count(page: Page) -> int:
    n: int = page.eval_on_selector("#timeline", "n => n.childElementCount")
    return n


def test_the_timeline_follows_new_events_at_its_bottom_and_stays_put_when_scrolled_up(
    page: Page, web: WebService, worker: WorkerService, rest: Rest
) -> None:
    # Given a run streaming many chunks, watched in its run view
    job = rest.submit("chatty", {"count": 400, "delay": 0.04})
    open_run_view(page, web.url, job["id"])
    expect_state(page, "STARTED")

    # When the timeline grows past its box, the reader still at its end
    page.wait_for_function(
        "() => { const n = document.getElementById('timeline');"
        " return n.scrollHeight > n.clientHeight * 1.5; }",
        timeout=20_000,
    )
    rows = _row_count(page)
    page.wait_for_function(f"() => document.getElementById('timeline').childElementCount > {rows}")
    # Then it keeps showing the newest rows
    page.wait_for_timeout(300)
    assert page.eval_on_selector("#timeline", AT_BOTTOM), "the timeline did not follow"

    # And when the reader scrolls up, new rows do not move it
    page.eval_on_selector("#timeline", "n => { n.scrollTop = 0; }")
    seq = page.eval_on_selector("#timeline", "n => n.lastElementChild.dataset.seq")
    page.wait_for_function(
        f"() => document.getElementById('timeline').lastElementChild.dataset.seq !== '{seq}'"
    )
    page.wait_for_timeout(300)
    assert page.eval_on_selector("#timeline", "n => n.scrollTop") == 0
    rest.cancel(job["id"], check=False)


def test_steps_and_tool_calls_are_not_cut_off_in_small_scroll_boxes(
    page: Page, web: WebService, worker: WorkerService, rest: Rest
) -> None:
    # Given a research run with four sources (five steps, four tool calls), finished
    job = rest.submit("research", {"topic": "tides and the moon", "sources": 4, "delay": 0})
    open_run_view(page, web.url, job["id"])
    expect_state(page, "SUCCESS")
    expect(page.locator("#steps li")).to_have_count(5)
    expect(page.locator("#tools li")).to_have_count(4)

    # Then neither list scrolls, and no step name, argument or result is clipped
    clipped = page.evaluate(
        """() => [...document.querySelectorAll(
              '#steps, #tools, #steps .wf-name, #tools pre, #tools .tool-head')]
            .filter(n => n.scrollHeight > n.clientHeight + 1 || n.scrollWidth > n.clientWidth + 1)
            .map(n => `${n.id || n.className}: ${n.scrollWidth}x${n.scrollHeight}`
                      + ` in ${n.clientWidth}x${n.clientHeight}`)"""
    )
    assert clipped == [], clipped


def test_a_finished_job_without_steps_hides_cancel_and_does_not_say_yet(
    page: Page, web: WebService, worker: WorkerService, rest: Rest
) -> None:
    # Given a short sleep (no steps) that has succeeded
    job = rest.submit("sleep", {"seconds": 0.2})
    open_run_view(page, web.url, job["id"])
    expect_state(page, "SUCCESS")

    # Then Cancel is gone, Retry is offered, and the steps panel says there were none
    expect(page.locator("#cancel")).to_be_hidden()
    expect(page.locator("#retry")).to_be_enabled()
    expect(page.locator("#steps-empty")).to_have_text("No steps.")


def test_cancel_is_shown_while_the_job_runs(
    page: Page, web: WebService, worker: WorkerService, rest: Rest
) -> None:
    job = rest.submit("sleep", {"seconds": 30})
    open_run_view(page, web.url, job["id"])
    expect_state(page, "STARTED")
    expect(page.locator("#cancel")).to_be_enabled()
    expect(page.locator("#steps-empty")).to_have_text("No steps yet.")
    rest.cancel(job["id"])
    expect_state(page, "REVOKED")
    expect(page.locator("#cancel")).to_be_hidden()


def test_the_progress_bar_completes_when_the_job_succeeds(
    page: Page, web: WebService, worker: WorkerService, rest: Rest
) -> None:
    # Given a run whose last progress report was 1 of 4, then succeeded
    job = rest.submit("partial_progress", {"done": 1, "total": 4})
    open_run_view(page, web.url, job["id"])
    expect_state(page, "SUCCESS")

    # Then the bar is full and says 100%
    expect(page.locator("#progress")).to_have_attribute("value", "4")
    expect(page.locator("#progress")).to_have_attribute("max", "4")
    expect(page.locator("#progress-text")).to_have_text("4 / 4 (100%)")
