"""Helpers for the browser tests: REST calls, page probes, bounded waits."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from playwright.sync_api import Page, expect

from tests.support import http
from tests.support.ws import WsClient

FINAL = ("SUCCESS", "FAILURE", "REVOKED")

# Installed before any page script runs: records every state the run view's
# badge shows, and every length the output text takes, as they happen.
RECORDER_SCRIPT = """
(() => {
  window.__states = [];        // run view: each state the badge showed, in order
  window.__outputLengths = []; // run view: the output's length before each change, then after
  window.__rowStates = {};     // jobs page: job id -> the states its row showed, in order
  const watch = () => {
    const badge = document.getElementById("run-state");
    const output = document.getElementById("output");
    const rows = document.querySelector("#jobs tbody");
    if (badge) {
      new MutationObserver(() => {
        const s = badge.dataset.state;
        if (s && window.__states[window.__states.length - 1] !== s) window.__states.push(s);
      }).observe(badge, { attributes: true, attributeFilter: ["data-state"] });
    }
    if (output) {
      new MutationObserver((records) => {
        for (const r of records) {
          if (r.type === "characterData") window.__outputLengths.push((r.oldValue || "").length);
        }
        window.__outputLengths.push(output.textContent.length);
      }).observe(output, { characterData: true, characterDataOldValue: true, subtree: true });
    }
    if (rows) {
      const seen = () => {
        for (const tr of rows.querySelectorAll("tr[data-job]")) {
          const list = (window.__rowStates[tr.dataset.job] ||= []);
          if (list[list.length - 1] !== tr.dataset.state) list.push(tr.dataset.state);
        }
      };
      new MutationObserver(seen).observe(rows, {
        subtree: true, childList: true, attributes: true, attributeFilter: ["data-state"],
      });
    }
  };
  document.addEventListener("DOMContentLoaded", watch);
})();
"""


@dataclass
class PageErrors:
    uncaught: list[str] = field(default_factory=list)
    csp: list[str] = field(default_factory=list)

    def assert_clean(self) -> None:
        assert not self.uncaught, f"uncaught script errors: {self.uncaught}"
        assert not self.csp, f"Content-Security-Policy violations: {self.csp}"


class Rest:
    """The REST API of the web server under test."""

    def __init__(self, base_url: str) -> None:
        self.base = base_url.rstrip("/")
        self.http = http.session()

    def submit(self, agent: str, input: dict[str, Any], **extra: Any) -> dict[str, Any]:
        res = self.http.post(
            f"{self.base}/api/jobs", json={"agent": agent, "input": input, **extra}, timeout=10
        )
        assert res.status_code == 202, res.text
        job: dict[str, Any] = res.json()
        return job

    def job(self, job_id: str) -> dict[str, Any]:
        res = self.http.get(f"{self.base}/api/jobs/{job_id}", timeout=10)
        assert res.status_code == 200, res.text
        job: dict[str, Any] = res.json()
        return job

    def events(self, job_id: str, since: int = 0) -> dict[str, Any]:
        res = self.http.get(f"{self.base}/api/jobs/{job_id}/events?since={since}", timeout=10)
        assert res.status_code == 200, res.text
        body: dict[str, Any] = res.json()
        return body

    def cancel(self, job_id: str, check: bool = True) -> None:
        res = self.http.post(f"{self.base}/api/jobs/{job_id}/cancel", timeout=10)
        if check:
            assert res.status_code == 202, res.text


def wait_for_state(
    base_url: str, job_id: str, states: tuple[str, ...], timeout: float = 20.0
) -> str:
    """Block until the job's events reach one of `states` (over the WebSocket, bounded)."""
    ws = WsClient(base_url, timeout=timeout)
    try:
        ws.subscribe_job(job_id, since=0)
        events = ws.events_until(job_id, lambda e: e["state"] in states, timeout=timeout)
        state: str = events[-1]["state"]
        return state
    finally:
        ws.close()


def open_run_view(page: Page, base_url: str, job_id: str) -> None:
    page.goto(f"{base_url}/jobs/{job_id}")
    expect(page.locator("#conn")).to_have_attribute("data-status", "live")


def expect_state(page: Page, state: str, timeout: float = 20_000) -> None:
    expect(page.locator("#run-state")).to_have_attribute("data-state", state, timeout=timeout)


def timeline_seqs(page: Page) -> list[int]:
    seqs: list[int] = page.eval_on_selector_all(
        "#timeline li[data-seq]", "rows => rows.map(r => Number(r.dataset.seq))"
    )
    return seqs


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) by nearest rank."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    rank = max(1, min(len(ordered), math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]
