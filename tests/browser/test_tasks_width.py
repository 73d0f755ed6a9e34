"""The monitoring tasks page at 1400 px (issue 13): no column cut off, dates on one line."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page, expect

from tests.browser.helpers import Rest, wait_for_state
from tests.support import WebService, WorkerService


def test_the_tasks_table_fits_1400_px_with_dates_on_one_line(
    page: Page, web: WebService, worker: WorkerService, screenshots: Path
) -> None:
    # Given tasks with long arguments and results
    rest = Rest(web.url)
    job = rest.submit("echo", {"text": "a long text " * 20, "steps": 1, "delay": 0})["id"]
    wait_for_state(web.url, job, ("SUCCESS",))

    # When the tasks page is shown 1400 px wide
    page.set_viewport_size({"width": 1400, "height": 900})
    page.goto(f"{web.url}/monitor/tasks")
    expect(page.locator("#tasks tbody tr").first).to_be_visible()
    page.screenshot(path=str(screenshots / "monitor-tasks-1400.png"), full_page=True)

    # Then the table does not scroll sideways, and every date cell is one line
    wrap = page.eval_on_selector(".table-wrap", "n => [n.scrollWidth, n.clientWidth]")
    assert wrap[0] <= wrap[1], f"the tasks table overflows its container: {wrap}"
    wrapped = page.eval_on_selector_all(
        "#tasks td.date",
        """cells => cells.filter(c => {
            const r = document.createRange();
            r.selectNodeContents(c);
            return c.textContent && new Set([...r.getClientRects()].map(x => x.top)).size > 1;
        }).map(c => c.textContent)""",
    )
    assert wrapped == [], wrapped
