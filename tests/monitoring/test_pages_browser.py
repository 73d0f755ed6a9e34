"""The monitoring pages in Chromium: tasks, a task (retry), a worker, dashboard, broker."""

from __future__ import annotations

import uuid
from urllib.parse import unquote

from playwright.sync_api import APIResponse, Page, Route, expect

from tests.monitoring import plain_app
from tests.monitoring.conftest import PlainWorker
from tests.monitoring.helpers import Api, eventually, wait_final, wait_state
from tests.support import WebService


def test_tasks_page_searches_and_follows_states_live(
    page: Page, web: WebService, api: Api, online_plain_worker: PlainWorker
) -> None:
    tag = uuid.uuid4().hex[:8]
    done = [plain_app.greet.delay(f"{tag}-p{i}", user=i) for i in range(3)]
    failed = plain_app.boom.delay(f"{tag}-oops")
    for r in [*done, failed]:
        wait_final(api, r.id)
    running = plain_app.nap.delay(1.5)
    wait_state(api, running.id, "STARTED")
    # given the tasks page, searching with Flower's syntax
    page.goto(f"{web.url}/monitor/tasks")
    page.fill('input[name="search"]', f"name:plain state:FAILURE {tag}")
    page.click('#task-filters button[type="submit"]')
    # then only the failed task of this batch is listed
    rows = page.locator("#tasks tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-task", failed.id)
    expect(rows.first).to_have_attribute("data-state", "FAILURE")
    # and sorting by name keeps the batch whole
    page.fill('input[name="search"]', tag)
    page.click('#task-filters button[type="submit"]')
    expect(rows).to_have_count(4)
    page.click('th[data-sort="name"] button')
    expect(page.locator('th[data-sort="name"]')).to_have_attribute("aria-sort", "descending")
    expect(rows).to_have_count(4)
    # when a task on screen finishes, then its row follows without a reload
    page.fill('input[name="search"]', "name:plain.nap")
    page.click('#task-filters button[type="submit"]')
    row = page.locator(f'#tasks tbody tr[data-task="{running.id}"]')
    expect(row).to_have_attribute("data-state", "SUCCESS", timeout=15_000)
    # and a new task offers itself without moving the page under the reader
    plain_app.add.delay(1, 1)
    expect(page.locator("#new-tasks")).to_be_visible()


def test_a_task_that_ends_while_the_list_loads_is_shown_ended(
    page: Page, web: WebService, api: Api, online_plain_worker: PlainWorker
) -> None:
    # given a running task, its row STARTED in SQL history
    key = uuid.uuid4().hex
    running = plain_app.hold.delay(key)
    eventually(
        lambda: api.request("GET", f"/api/task/info/{running.id}").json(),
        lambda t: t.get("state") == "STARTED",
        timeout=30,
    )
    # and the tasks page, showing other tasks
    with page.expect_websocket() as opened:
        page.goto(f"{web.url}/monitor/tasks?search=state:FAILURE+{key}")
    expect(page.locator("#tasks-empty")).to_be_visible()
    socket = opened.value
    stale: list[APIResponse] = []

    def finish_while_loading(route: Route) -> None:
        # the list is read while the task runs; the task ends and its event reaches
        # the page before that (now stale) list does
        stale.append(route.fetch())
        with socket.expect_event(
            "framereceived",
            lambda frame: running.id in str(frame) and '"SUCCESS"' in str(frame),
            timeout=15_000,
        ):
            plain_app.release(key)
        route.fulfill(response=stale[-1])

    page.route(
        lambda url: "/api/monitor/tasks?" in url and key in unquote(url) and not stale,
        finish_while_loading,
    )
    # when the reader searches for it
    page.fill('input[name="search"]', key)
    page.click('#task-filters button[type="submit"]')
    # then its row shows it ended, though the list it came in said STARTED
    row = page.locator(f'#tasks tbody tr[data-task="{running.id}"]')
    expect(row).to_have_attribute("data-state", "SUCCESS", timeout=15_000)
    assert [t["state"] for t in stale[0].json()["tasks"]] == ["STARTED"]
    expect(row.locator(".state .badge")).to_have_text("SUCCESS")
    # and once history has it, the row is history's (its runtime shown)
    expect(row.locator(".dur")).not_to_have_text("—", timeout=15_000)


def test_a_task_page_whose_history_lags_shows_the_state_its_events_gave(
    page: Page, web: WebService, api: Api, online_plain_worker: PlainWorker
) -> None:
    # given a running task's page
    key = uuid.uuid4().hex
    running = plain_app.hold.delay(key)
    wait_state(api, running.id, "STARTED")
    page.goto(f"{web.url}/monitor/tasks/{running.id}")
    expect(page.locator("#task-state")).to_have_text("STARTED")
    # and history that, read just after the task ends, still says STARTED twice
    url = f"{web.url}/api/monitor/tasks/{running.id}"
    stale = page.request.get(url)
    assert stale.json()["state"] == "STARTED"
    served: list[str] = []

    def lagging(route: Route) -> None:
        served.append(route.request.url)
        route.fulfill(response=stale)

    page.route(lambda u: u == url and len(served) < 2, lagging)
    # when the task ends
    plain_app.release(key)
    # then the page shows the state its event gave, and history's fields once it has them
    expect(page.locator("#task-state")).to_have_text("SUCCESS", timeout=15_000)
    expect(page.locator('[data-fact="runtime"] dd')).not_to_have_text("—", timeout=15_000)
    expect(page.locator("#task-state")).to_have_text("SUCCESS")
    assert len(served) == 2


def test_task_page_retries_a_failed_task(
    admin_page: Page, web: WebService, api: Api, online_plain_worker: PlainWorker
) -> None:
    page = admin_page
    failed = plain_app.flaky.delay(uuid.uuid4().hex)
    wait_final(api, failed.id)
    # given the failed task's page
    page.goto(f"{web.url}/monitor/tasks/{failed.id}")
    expect(page.locator("#task-state")).to_have_text("FAILURE")
    expect(page.locator("#task-exception")).to_contain_text("RuntimeError")
    expect(page.locator("#task-traceback")).to_contain_text("Traceback")
    expect(page.locator('[data-fact="worker"] dd')).to_have_text(online_plain_worker.hostname)
    # when the admin clicks Retry
    page.click("#retry")
    # then the new run's page shows it succeeding
    page.click("#retried-link")
    expect(page.locator("#task-state")).to_have_text("SUCCESS", timeout=15_000)
    expect(page.locator('[data-fact="retries"] dd')).to_have_text("0")


def test_worker_page_controls_and_dashboard_and_broker(
    admin_page: Page, web: WebService, api: Api, online_plain_worker: PlainWorker
) -> None:
    page = admin_page
    host = online_plain_worker.hostname
    # given the worker's page
    page.goto(f"{web.url}/monitor/workers/{host}")
    expect(page.locator("#worker-presence")).to_have_attribute("data-online", "true")
    expect(page.locator('[data-fact="pool"] dd')).to_have_text("prefork")
    concurrency = page.locator('[data-fact="concurrency"] dd')
    expect(concurrency).to_have_text("2")
    expect(page.locator("#registered")).to_contain_text("plain.add")
    expect(page.locator("#queues")).to_contain_text("plain")
    # when the admin grows the pool, then the next heartbeat shows it; shrink brings it back
    page.click('form[data-control="grow"] button')
    expect(concurrency).to_have_text("3", timeout=10_000)
    page.click('form[data-control="shrink"] button')
    expect(concurrency).to_have_text("2", timeout=10_000)
    # given the dashboard, then samples are pushed and drawn
    page.goto(f"{web.url}/monitor/")
    first = page.evaluate("document.body.dataset.lastSample || '0'")
    page.wait_for_function(
        "(first) => Number(document.body.dataset.lastSample || 0) > Number(first)",
        arg=first,
        timeout=10_000,
    )
    expect(page.locator('[data-tile="workers"] dd')).not_to_have_text("0")
    expect(page.locator("#chart-depth polyline").first).to_be_attached()
    # given the broker page, then the plain queue is there with its consumer
    page.goto(f"{web.url}/monitor/broker")
    row = page.locator('#queues tr[data-queue="plain"]')
    expect(row.locator('[data-field="consumers"]')).not_to_have_text("0")
    expect(row).to_contain_text(host)
