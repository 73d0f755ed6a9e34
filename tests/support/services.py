"""The worker and web server of the test session, as restartable child processes."""

from __future__ import annotations

import contextlib
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

from launcher.commands import REPO_ROOT, WORKER_READY, web_argv, worker_argv
from launcher.net import free_port, http_ok, local_url, wait_until
from launcher.processes import ManagedProcess, ProcessExited
from tests.support.platform import Platform

START_TIMEOUT = float(os.environ.get("AGENTDECK_TEST_START_TIMEOUT", "60"))
STOP_TIMEOUT = 15.0


class Service:
    """A child process with start / stop / kill that a fault test may use freely."""

    def __init__(self, proc: ManagedProcess) -> None:
        self.proc = proc

    @property
    def pid(self) -> int | None:
        return self.proc.pid

    @property
    def running(self) -> bool:
        return self.proc.running

    @property
    def log_path(self) -> Path:
        return self.proc.log_path

    def start(self, timeout: float = START_TIMEOUT) -> None:
        self.proc.start()
        try:
            self.wait_ready(timeout)
        except BaseException:
            self.proc.kill()
            raise

    def wait_ready(self, timeout: float) -> None:
        raise NotImplementedError

    def ensure_running(self) -> None:
        if not self.running:
            self.proc.stop(timeout=0)  # reap it and any stragglers
            self.start()

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """SIGTERM, then SIGKILL after `timeout`; returns the exit code."""
        return self.proc.stop(timeout)

    def kill(self) -> None:
        """SIGKILL the process and everything it started, at once."""
        self.proc.kill()

    def restart(self, timeout: float = START_TIMEOUT) -> None:
        self.stop()
        self.start(timeout)

    def tail(self, lines: int = 40) -> str:
        return self.proc.tail(lines)


class WorkerService(Service):
    """`celery -A workers worker` with a unique hostname; ready once it logs `ready.`."""

    def __init__(
        self,
        platform: Platform,
        *,
        concurrency: int = 2,
        name: str = "worker",
        queues: tuple[str, ...] = (),
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.hostname = f"test-{uuid.uuid4().hex[:8]}@{socket.gethostname()}"
        argv = worker_argv(concurrency=concurrency, hostname=self.hostname, queues=queues)
        super().__init__(
            ManagedProcess(
                name,
                argv,
                env=platform.env(**(extra_env or {})),
                cwd=REPO_ROOT,
                log_path=platform.output_dir / f"{name}.log",
            )
        )

    def wait_ready(self, timeout: float) -> None:
        self.proc.wait_for_line(WORKER_READY, timeout)


class WebService(Service):
    """gunicorn (gevent) serving `webapp:create_app()` on a free port; ready on /healthz."""

    def __init__(
        self,
        platform: Platform,
        *,
        name: str = "web",
        processes: int = 1,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.host = "127.0.0.1"
        self.port = free_port(self.host)
        self.url = local_url(self.host, self.port)
        self.ws_url = self.url.replace("http://", "ws://", 1) + "/ws"
        argv = web_argv(
            host=self.host,
            port=self.port,
            processes=processes,
            extra=["--access-logfile", "-"],
        )
        super().__init__(
            ManagedProcess(
                name,
                argv,
                env=platform.env(**(extra_env or {})),
                cwd=REPO_ROOT,
                log_path=platform.output_dir / f"{name}.log",
            )
        )

    def healthy(self) -> bool:
        return http_ok(self.url + "/healthz", timeout=1.0)

    def wait_ready(self, timeout: float) -> None:
        proc = self.proc
        wait_until(lambda: not proc.running or self.healthy(), timeout, interval=0.1)
        if not proc.running:
            raise ProcessExited(f"web exited (code {proc.returncode}):\n{proc.tail()}")
        if not self.healthy():
            raise TimeoutError(
                f"{self.url}/healthz did not answer within {timeout}s:\n{proc.tail()}"
            )


@contextlib.contextmanager
def running(*services: Service) -> Iterator[None]:
    """Start `services` in order; stop them in reverse, however the block ends."""
    started: list[Service] = []
    try:
        for service in services:
            service.start()
            started.append(service)
        yield
    finally:
        for service in reversed(started):
            service.stop()
