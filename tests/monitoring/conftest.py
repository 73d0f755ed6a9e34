"""Fixtures for the monitoring tests: a worker of a plain Celery app, an admin client.

The plain app (plain_app.py) is a user's own project with the one line that
turns monitoring on; its worker consumes its own queue, so the session's
Agentdeck worker never sees its tasks. One plain worker serves the session;
a test that kills a worker starts its own (`doomed_worker`).
"""

from __future__ import annotations

import socket
import sys
import uuid
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page

from launcher.commands import REPO_ROOT, WORKER_READY
from launcher.processes import ManagedProcess
from tests.monitoring.helpers import Api, wait_for_worker
from tests.support import Platform, WebService
from tests.support.services import Service


class PlainWorker(Service):
    """`celery -A tests.monitoring.plain_app worker` on the `plain` queue (or `queue`);
    `events=True` adds `-E` (Celery's task events, which Flower learns tasks from)."""

    def __init__(
        self,
        platform: Platform,
        *,
        concurrency: int = 2,
        pool: str = "prefork",
        queue: str = "plain",
        events: bool = False,
    ) -> None:
        self.hostname = f"plain-{uuid.uuid4().hex[:8]}@{socket.gethostname()}"
        self.queue = queue
        argv = [
            sys.executable, "-m", "celery", "-A", "tests.monitoring.plain_app", "worker",
            "-l", "info", "-Q", queue, "-P", pool, "--concurrency", str(concurrency),
            "--hostname", self.hostname, "--without-gossip", "--without-mingle",
        ]  # fmt: skip
        if events:
            argv.append("-E")
        name = self.hostname.split("@")[0]
        super().__init__(
            ManagedProcess(
                name,
                argv,
                env=platform.env(),
                cwd=REPO_ROOT,
                log_path=platform.output_dir / f"{name}.log",
            )
        )

    def wait_ready(self, timeout: float) -> None:
        self.proc.wait_for_line(WORKER_READY, timeout)


@pytest.fixture(scope="session")
def plain_worker(platform: Platform) -> Iterator[PlainWorker]:
    """The session's worker of the plain app (prefork, 2 processes)."""
    w = PlainWorker(platform)
    w.start()
    yield w
    w.stop(timeout=10)


@pytest.fixture
def doomed_worker(platform: Platform) -> Iterator[PlainWorker]:
    """A worker of its own for a test that kills it (solo pool: light to start)."""
    w = PlainWorker(platform, concurrency=1, pool="solo")
    w.start()
    yield w
    w.kill()


@pytest.fixture
def api(web: WebService, admin_token: str) -> Api:
    return Api(web.url, admin_token)


@pytest.fixture
def admin_page(page: Page, admin_token: str) -> Page:
    """The browser page, logged in as the admin (every `page` is)."""
    return page


@pytest.fixture
def online_plain_worker(plain_worker: PlainWorker, web: WebService, api: Api) -> PlainWorker:
    """The plain worker, once the web shows it online (its first heartbeat arrived)."""
    plain_worker.ensure_running()
    wait_for_worker(api, plain_worker.hostname, online=True, timeout=20)
    return plain_worker
