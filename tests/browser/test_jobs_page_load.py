"""The jobs page under task load: plain Celery tasks at the worker's full rate, several
pages on the jobs page. The web process stays under one core, each page stays
responsive (no task of its main thread over 100 ms) and, once the tasks are done,
every row on every page shows its job's final state.

Responsive is judged on Chromium's trace, by each main-thread task's *thread* time:
on two cores shared by the worker at full rate, the browsers and whatever else runs,
a task of a few ms of CPU can wait 150 ms off the CPU and be reported by
PerformanceObserver('longtask') as long. Those long tasks are recorded and printed
too, and judged as well with `AGENTDECK_LOAD_STRICT_WALL=1` (on a machine with cores
to spare). `AGENTDECK_LOAD_PAGES` (5 here; 20 in the issue's benchmark) and
`AGENTDECK_LOAD_SECONDS` (6) size it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator

import psutil
import pytest
import redis
from playwright.sync_api import Browser, Page

from launcher.commands import REPO_ROOT
from tests.monitoring.conftest import PlainWorker
from tests.support import Platform, WebService, http
from workers.settings import get_settings

STRICT_WALL = os.environ.get("AGENTDECK_LOAD_STRICT_WALL") == "1"
PAGES = int(os.environ.get("AGENTDECK_LOAD_PAGES", "5"))
SECONDS = float(os.environ.get("AGENTDECK_LOAD_SECONDS", "6"))
QUEUE = "plain-load"
LONG_TASK_MS = 100
# tasks/s: below this the load is too light for the test to mean anything. A page's
# coalesced topic sends at most 10 frames a second and each task makes three lifecycle
# events, so at 10 tasks/s every frame merges three events or more. The worker shares
# two cores with the renderers and the rest: 14-280 tasks/s seen on CI VMs.
MIN_RATE = 10

# Each page records its long tasks (Chromium reports tasks over 50 ms) from now on.
OBSERVE_LONG_TASKS = """
window.__longTasks = [];
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) window.__longTasks.push(Math.round(e.duration));
}).observe({ type: "longtask", buffered: true });
"""

# Keeps the plain queue a few hundred deep, so the worker runs at its full rate; prints
# how many tasks it sent.
PRODUCER = """
import sys, time, redis
from tests.monitoring import plain_app
r = redis.Redis.from_url(plain_app.BROKER)
queue, until = sys.argv[1], time.monotonic() + float(sys.argv[2])
sent = 0
while time.monotonic() < until:
    if r.llen(queue) > 500:
        time.sleep(0.02)
        continue
    for _ in range(50):
        plain_app.add.apply_async((sent, 1), queue=queue)
        sent += 1
print(sent, flush=True)
"""


@pytest.fixture
def load_worker(platform: Platform) -> Iterator[PlainWorker]:
    """The plain app's worker, at the same CPU priority as the browsers: a niced one
    starved on a busy VM (14 tasks/s), and the pages are judged on their main threads'
    CPU time, which the worker's share of the cores does not lengthen."""
    w = PlainWorker(platform, concurrency=2, queue=QUEUE)
    w.start()
    yield w
    w.stop(timeout=10)


def _cpu_seconds(root: psutil.Process) -> float:
    """CPU seconds of the web server: gunicorn's master and its workers."""
    total = 0.0
    for p in [root, *root.children(recursive=True)]:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def main_thread_task_ms(trace: bytes) -> dict[int, list[tuple[float, float]]]:
    """{renderer pid: [(wall ms, thread ms) of each task of its main thread]}."""
    events = json.loads(trace)
    events = events["traceEvents"] if isinstance(events, dict) else events
    mains = {
        (e["pid"], e["tid"])
        for e in events
        if e.get("ph") == "M"
        and e.get("name") == "thread_name"
        and e["args"].get("name") == "CrRendererMain"
    }
    out: dict[int, list[tuple[float, float]]] = {}
    for e in events:
        if e.get("ph") == "X" and e.get("name") == "RunTask" and (e["pid"], e["tid"]) in mains:
            tasks = out.setdefault(e["pid"], [])
            tasks.append((e.get("dur", 0) / 1000, e.get("tdur", 0) / 1000))
    return out


def _rows_not_final(page: Page) -> list[str]:
    return page.evaluate(
        """() => [...document.querySelectorAll('#jobs tbody tr')]
            .filter((tr) => !['SUCCESS', 'FAILURE', 'REVOKED'].includes(tr.dataset.state))
            .map((tr) => tr.dataset.job)"""
    )


def test_the_jobs_page_stays_responsive_under_a_workers_full_rate(
    browser: Browser,
    web: WebService,
    admin_token: str,
    platform: Platform,
    load_worker: PlainWorker,
    redis_client: redis.Redis,
) -> None:
    # given several pages on the jobs page, each recording its long tasks
    pages: list[Page] = []
    for _ in range(PAGES):
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        login = context.request.get(f"{web.url}/login?token={admin_token}", max_redirects=0)
        assert login.status == 302
        page = context.new_page()
        page.add_init_script(OBSERVE_LONG_TASKS)
        page.goto(f"{web.url}/")
        page.wait_for_selector("#jobs", state="attached")
        pages.append(page)
    try:
        for page in pages:  # the page's own load is not what is judged
            page.wait_for_function(
                "() => document.querySelector('#jobs-status').textContent === ''"
            )
            page.evaluate("() => { window.__longTasks = []; }")
        # every renderer's main thread, traced (the trace holds each task's thread time)
        browser.start_tracing(
            page=pages[0],  # the trace is the browser's: it holds every page's renderer
            categories=["devtools.timeline", "disabled-by-default-devtools.timeline"],
        )
        web_proc = psutil.Process(web.pid)
        cpu_before, t0 = _cpu_seconds(web_proc), time.monotonic()
        # when plain tasks flow at the worker's full rate
        producer = subprocess.run(
            [sys.executable, "-c", PRODUCER, QUEUE, str(SECONDS)],
            cwd=REPO_ROOT,
            env=platform.env(),
            capture_output=True,
            text=True,
            timeout=SECONDS + 60,
            check=True,
        )
        elapsed = time.monotonic() - t0
        web_cores = (_cpu_seconds(web_proc) - cpu_before) / elapsed
        sent = int(producer.stdout.split()[-1])
        ran = sent - int(redis_client.llen(QUEUE))
        rate = ran / elapsed
        by_page = main_thread_task_ms(browser.stop_tracing())
        long_tasks = [page.evaluate("() => window.__longTasks") for page in pages]
        cpu_max = max(cpu for tasks in by_page.values() for _, cpu in tasks)
        wall_max = max(wall for tasks in by_page.values() for wall, _ in tasks)
        print(
            f"\n{PAGES} pages, {rate:.0f} tasks/s for {elapsed:.1f}s: web {web_cores:.2f} cores;"
            f" longest main-thread task {cpu_max:.0f} ms of CPU ({wall_max:.0f} ms wall);"
            f" PerformanceObserver long tasks per page (ms): {long_tasks}"
        )
        # then the load was real, the web process stayed under one core
        assert rate >= MIN_RATE, f"only {rate:.0f} tasks/s: no load to judge"
        assert web_cores < 1.0, f"web process at {web_cores:.2f} cores"
        # and no page's main thread ran a task of over 100 ms
        assert len(by_page) >= PAGES and all(len(t) > 100 for t in by_page.values())
        assert cpu_max > 0, "the trace holds no thread times"
        assert cpu_max <= LONG_TASK_MS, f"a task of {cpu_max:.0f} ms of CPU"
        if STRICT_WALL:
            assert all(d <= LONG_TASK_MS for tasks in long_tasks for d in tasks), long_tasks
        # and once the queue is drained, every row on every page shows a final state,
        # as the REST list does
        deadline = time.monotonic() + 60
        while redis_client.llen(QUEUE) and time.monotonic() < deadline:
            time.sleep(0.2)
        for page in pages:
            page.wait_for_function(
                """() => [...document.querySelectorAll('#jobs tbody tr')].every((tr) =>
                    ['SUCCESS', 'FAILURE', 'REVOKED'].includes(tr.dataset.state))""",
                timeout=30_000,
            )
            assert page.locator("#jobs tbody tr").count() > 0
            assert _rows_not_final(page) == []
        listed = http.get(f"{web.url}/api/jobs", params={"limit": "50"}).json()["jobs"]
        assert {j["state"] for j in listed} == {"SUCCESS"}
    finally:
        # Leave no backlog to the next tests: the recorder has every job in SQL.
        dirty = get_settings().keys.dirty
        deadline = time.monotonic() + 120
        while redis_client.zcard(dirty) and time.monotonic() < deadline:
            time.sleep(0.2)
        for page in pages:
            page.context.close()
