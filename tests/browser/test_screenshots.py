"""Screenshots of every page, desktop and phone, into test-output/<run>/screenshots/."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page, expect

from tests.browser.helpers import Rest, expect_state, open_run_view
from tests.support import WebService, WorkerService


def _shoot_all(page: Page, web: WebService, rest: Rest, folder: Path, prefix: str) -> None:
    echo = rest.submit(
        "echo", {"text": "A short answer, streamed word by word.", "steps": 3, "delay": 0.1}
    )
    fail = rest.submit("fail", {"message": "the tool answered 503"})

    page.goto(web.url)
    expect(page.locator(f'tr[data-job="{fail["id"]}"]')).to_be_visible()
    expect(page.locator(f'tr[data-job="{fail["id"]}"]')).to_have_attribute("data-state", "FAILURE")
    page.screenshot(path=str(folder / f"{prefix}jobs.png"), full_page=True)

    open_run_view(page, web.url, echo["id"])
    expect_state(page, "SUCCESS")
    page.screenshot(path=str(folder / f"{prefix}run-success.png"), full_page=True)

    open_run_view(page, web.url, fail["id"])
    expect_state(page, "FAILURE")
    page.click("#error-panel summary")
    page.screenshot(path=str(folder / f"{prefix}run-failure.png"), full_page=True)

    page.goto(f"{web.url}/submit?agent=echo")
    expect(page.locator("#in-text")).to_be_visible()
    page.screenshot(path=str(folder / f"{prefix}submit.png"), full_page=True)
    page.click("#submit-btn")
    expect(page.locator("#in-text-error")).to_be_visible()
    page.screenshot(path=str(folder / f"{prefix}submit-error.png"), full_page=True)

    page.goto(f"{web.url}/agents")
    expect(page.locator(".agent-card")).not_to_have_count(0)
    expect(page.locator("#agent-echo .recent li[data-job]").first).to_be_visible()
    page.screenshot(path=str(folder / f"{prefix}agents.png"), full_page=True)


def test_screenshots_of_each_page_on_a_desktop(
    page: Page, web: WebService, worker: WorkerService, screenshots: Path
) -> None:
    _shoot_all(page, web, Rest(web.url), screenshots, "")
    for name in ("jobs", "run-success", "run-failure", "submit", "submit-error", "agents"):
        assert (screenshots / f"{name}.png").stat().st_size > 0


def test_screenshots_of_each_page_on_a_phone(
    phone: Page, web: WebService, worker: WorkerService, screenshots: Path
) -> None:
    _shoot_all(phone, web, Rest(web.url), screenshots, "phone-")
    # Nothing wider than the screen: the pages read without sideways scrolling.
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the agents page is {width}px wide on a 390px phone"
