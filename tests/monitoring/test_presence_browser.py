"""Worker presence in the browser: online, live heartbeats, offline within 5 s of SIGKILL."""

from __future__ import annotations

import time

from playwright.sync_api import Page, expect

from tests.monitoring.conftest import PlainWorker
from tests.monitoring.helpers import Api, wait_for_worker
from tests.support import WebService

OFFLINE_WITHIN = 5.0


def test_worker_online_heartbeats_live_and_offline_within_5s_of_sigkill(
    page: Page, web: WebService, api: Api, doomed_worker: PlainWorker
) -> None:
    host = doomed_worker.hostname
    wait_for_worker(api, host, online=True, timeout=20)
    # given the workers page showing the worker online
    page.goto(f"{web.url}/monitor/workers")
    row = page.locator(f'tr[data-worker="{host}"]')
    expect(row).to_have_attribute("data-online", "true")
    expect(page.locator("#conn")).to_have_attribute("data-status", "live")
    # when its next heartbeats arrive, then the row's last heartbeat moves without a reload
    first = float(row.get_attribute("data-last-heartbeat") or 0)
    page.wait_for_function(
        '([host, first]) => Number(document.querySelector(`tr[data-worker="${host}"]`)'
        "?.dataset.lastHeartbeat) > first",
        arg=[host, first],
        timeout=10_000,
    )
    # when the worker is killed without a word
    doomed_worker.kill()
    killed = time.monotonic()
    # then the page shows it offline (greyed) within 5 s, pushed over the WebSocket
    page.wait_for_selector(
        f'tr[data-worker="{host}"][data-online="false"].offline',
        timeout=OFFLINE_WITHIN * 1000 + 2000,
    )
    took = time.monotonic() - killed
    assert took <= OFFLINE_WITHIN, f"shown offline after {took:.1f}s"
    # and an admin can purge it
    assert api.get("/api/workers", params={"status": "true"})[host] is False
    r = api.request("DELETE", f"/api/monitor/workers/{host}")
    assert r.status_code == 200
    expect(row).to_have_count(0)
