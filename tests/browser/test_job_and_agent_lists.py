"""The jobs and agents pages as a user saw them (issue 13): a "needs input" filter,
progress per running row, and a success rate that leaves cancelled runs out."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from launcher.net import wait_until
from tests.browser.helpers import Rest, wait_for_state
from tests.support import WebService, WorkerService


@pytest.fixture
def rest(web: WebService) -> Rest:
    return Rest(web.url)


def test_the_needs_input_filter_lists_the_waiting_jobs(
    page: Page, web: WebService, worker: WorkerService, rest: Rest
) -> None:
    # Given a run waiting for an answer and one that succeeded
    asking = rest.submit("ask", {"question": "ship it?"})["id"]
    done = rest.submit("echo", {"text": "done", "steps": 1, "delay": 0})["id"]
    wait_for_state(web.url, asking, ("WAITING",))
    wait_for_state(web.url, done, ("SUCCESS",))
    page.goto(web.url)
    expect(page.locator("#conn")).to_have_attribute("data-status", "live")
    expect(page.locator(f'tr[data-job="{done}"]')).to_be_visible()

    # When "Needs input" is ticked
    page.check("#needs-input")

    # Then the list holds the waiting jobs only, and the URL says so
    expect(page).to_have_url(re.compile(r"[?&]state=WAITING"))
    expect(page.locator(f'tr[data-job="{asking}"]')).to_be_visible()
    expect(page.locator(f'tr[data-job="{done}"]')).to_have_count(0)
    states = page.eval_on_selector_all("#jobs tbody tr", "rows => rows.map(r => r.dataset.state)")
    assert states and set(states) == {"WAITING"}, states
    expect(page.locator("#filters select[name=state]")).to_have_value("WAITING")

    # And unticking it shows every job again
    page.uncheck("#needs-input")
    expect(page.locator(f'tr[data-job="{done}"]')).to_be_visible()
    rest.cancel(asking, check=False)


def test_a_running_row_shows_its_progress(
    page: Page, web: WebService, worker: WorkerService, rest: Rest
) -> None:
    # Given the jobs page, live
    page.goto(web.url)
    expect(page.locator("#conn")).to_have_attribute("data-status", "live")

    # When a research run reports progress over eight sources
    job = rest.submit("research", {"topic": "progress", "sources": 8, "delay": 0.5})["id"]

    # Then its row shows a bar that moves while it runs
    bar = page.locator(f'tr[data-job="{job}"] .row-progress')
    expect(bar).to_be_visible(timeout=30_000)
    expect(bar).to_have_attribute("max", "8")
    page.wait_for_function(
        f"() => Number(document.querySelector('tr[data-job=\"{job}\"] .row-progress').value) >= 2",
        timeout=30_000,
    )
    # And once it has ended the bar goes (the duration says it is done)
    expect(page.locator(f'tr[data-job="{job}"]')).to_have_attribute(
        "data-state", "SUCCESS", timeout=40_000
    )
    expect(bar).to_be_hidden()


def test_the_success_rate_leaves_cancelled_runs_out(
    page: Page, web: WebService, worker: WorkerService, rest: Rest
) -> None:
    # Given the sleep agent with a cancelled run and a successful one
    def sleep_counts() -> dict[str, int]:
        res = rest.http.get(f"{rest.base}/api/jobs?agent=sleep&limit=1", timeout=10)
        return dict(res.json()["counts"])

    before = sleep_counts()
    cancelled = rest.submit("sleep", {"seconds": 30})["id"]
    wait_for_state(web.url, cancelled, ("STARTED",))
    rest.cancel(cancelled)
    ok = rest.submit("sleep", {"seconds": 0})["id"]
    wait_for_state(web.url, cancelled, ("REVOKED",))
    wait_for_state(web.url, ok, ("SUCCESS",))
    counts: dict[str, int] = {}

    def recorded() -> bool:  # the per-state counts come from the SQL history, a moment later
        counts.update(sleep_counts())
        return all(counts.get(s, 0) > before.get(s, 0) for s in ("REVOKED", "SUCCESS"))

    assert wait_until(recorded, 20), counts
    success, failure = counts.get("SUCCESS", 0), counts.get("FAILURE", 0)
    assert counts.get("REVOKED", 0) >= 1

    # When the agents page shows it
    page.goto(f"{web.url}/agents")

    # Then the rate is SUCCESS / (SUCCESS + FAILURE), and says the cancelled are left out
    rate = page.locator("#agent-sleep .rate")
    expected = f"{round(100 * success / (success + failure))}% of {success + failure} finished"
    expect(rate).to_contain_text(expected)
    expect(rate).to_contain_text(f"{counts['REVOKED']} cancelled, not counted")
