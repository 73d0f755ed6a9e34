"""The pages' event fold (webapp/static/js/fold.js) in Chromium.

The fold is held to the shared cases of tests/fixtures/event_folds.json, which
tests/test_event_fold.py runs through the Python fold (`apply_event`); and the
run view shows why a job's worker was lost, read from `job.lost`'s `error`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.helpers import Rest, expect_state, open_run_view
from tests.support import WebService, WorkerService, event_folds
from workers.events import EventType
from workers.publisher import get_publisher

# Each case's events folded into its start job (a copy), then folded again over the
# result, as the run view folds every event over a REST job that already holds them.
FOLD_CASES = """
async (cases) => {
  const { fold } = await import("/static/js/fold.js");
  return cases.map((c) => {
    let job = c.start === null ? null : structuredClone(c.start);
    for (const ev of c.events) job = fold(job, structuredClone(ev));
    const once = structuredClone(job);
    for (const ev of c.events) job = fold(job, structuredClone(ev));
    return { once, twice: job };
  });
}
"""

LOST = "WorkerLostError: worker celery@gone stopped heartbeating"


@pytest.fixture
def rest(web: WebService) -> Rest:
    return Rest(web.url)


@pytest.fixture
def sleeping_job(rest: Rest, worker: WorkerService) -> Iterator[dict[str, Any]]:
    """A `sleep` job that runs until the test is over."""
    job = rest.submit("sleep", {"seconds": 60})
    yield job
    rest.cancel(job["id"], check=False)


def test_the_pages_fold_gives_each_shared_case_its_expected_job(
    page: Page, web: WebService
) -> None:
    # Given a page of the app, whose origin serves the pages' modules, and the shared cases
    page.goto(f"{web.url}/agents")
    expect(page.locator("#conn")).to_have_attribute("data-status", "live")
    cases = event_folds.cases()

    # When the pages' fold folds each case's events in Chromium, then folds them again
    results: list[dict[str, Any]] = page.evaluate(FOLD_CASES, cases)

    # Then every case gives the job the Python fold gives, field for field,
    # and folding events the job already holds changes nothing
    assert len(results) == len(cases)
    failures: dict[str, list[str]] = {}
    for case, got in zip(cases, results, strict=True):
        wrong = event_folds.differences(case["expect"], got["once"])
        if case.get("idempotent", True):
            twice = event_folds.differences(case["expect"], got["twice"])
            wrong += [f"folded twice, {d}" for d in twice]
        if wrong:
            failures[case["name"]] = wrong
    assert not failures, "the pages' fold differs from the expectations:\n" + "\n".join(
        f"- {name}:\n    " + "\n    ".join(wrong) for name, wrong in failures.items()
    )


def test_the_run_view_shows_why_a_job_lost_its_worker(
    page: Page, web: WebService, rest: Rest, sleeping_job: dict[str, Any]
) -> None:
    # Given a running job, watched in its run view
    job_id = sleeping_job["id"]
    open_run_view(page, web.url, job_id)
    expect_state(page, "STARTED")

    # When the janitor says its worker was lost, in the words webapp/lost_workers.py uses
    seq = get_publisher().emit(
        job_id,
        EventType.JOB_LOST,
        {"error": LOST, "worker": "celery@gone", "requeued": False, "runs": 1},
        wait=True,
    )
    assert seq > 0, "the event was not published"

    # Then the run view says why, from the event's error: in the outcome line, the
    # timeline and the error panel; the job's state is unchanged
    outcome = f"The worker running this job was lost: {LOST}."
    expect(page.locator("#action-outcome")).to_have_text(outcome)
    row = page.locator(f"#timeline li[data-seq='{seq}']")
    expect(row).to_have_attribute("data-type", "job.lost")
    expect(row.locator(".ev-sum")).to_have_text(LOST)
    expect(page.locator("#error-panel")).to_be_visible()
    expect(page.locator("#error")).to_have_text(LOST)
    expect_state(page, "STARTED")

    # And when the page is opened again, from the history, it says the same
    open_run_view(page, web.url, job_id)
    expect(page.locator(f"#timeline li[data-seq='{seq}'] .ev-sum")).to_have_text(LOST)
    expect(page.locator("#action-outcome")).to_have_text(outcome)
    expect(page.locator("#error")).to_have_text(LOST)
    expect_state(page, "STARTED")
