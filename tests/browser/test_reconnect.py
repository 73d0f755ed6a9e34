"""The run view across a web server restart: reconnect, resume by seq, no duplicates."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.helpers import Rest, expect_state, open_run_view, timeline_seqs
from tests.support import WebService, WorkerService


@pytest.mark.parametrize("how", ["kill", "stop"])
def test_run_view_resumes_after_the_web_server_restarts_mid_job(
    page: Page, web: WebService, worker: WorkerService, how: str
) -> None:
    rest = Rest(web.url)
    text = " ".join(f"word{i}" for i in range(40))
    # Given a job that runs for a few seconds, watched in its run view
    job = rest.submit("echo", {"text": text, "steps": 8, "delay": 0.5})
    open_run_view(page, web.url, job["id"])
    expect(page.locator("#steps li").first).to_be_visible()
    page.evaluate("window.__sameDocument = true")

    # When the web server dies (SIGKILL) or stops (SIGTERM) while the job runs
    getattr(web, how)()
    expect(page.locator("#conn")).not_to_have_attribute("data-status", "live")
    expect(page.locator("#conn")).to_contain_text(re.compile("Reconnecting|Offline"))

    # And comes back
    web.start()

    # Then the page reconnects by itself and the timeline ends complete, each event once
    expect(page.locator("#conn")).to_have_attribute("data-status", "live", timeout=30_000)
    expect_state(page, "SUCCESS", timeout=30_000)
    head = rest.events(job["id"])["head"]
    expect(page.locator("#timeline li[data-seq]")).to_have_count(head)
    assert timeline_seqs(page) == list(range(1, head + 1))
    expect(page.locator("#output")).to_have_text(text)
    expect(page.locator("#steps li")).to_have_count(8)
    expect(page.locator('[data-fact="events"]')).to_have_text(str(head))
    assert page.evaluate("window.__sameDocument") is True, "the page was reloaded"
