"""Start the platform in order, watch it, and stop it in reverse order."""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import socket
import sys
from pathlib import Path
from types import FrameType
from typing import TextIO

import redis

from launcher.commands import WORKER_READY, child_env, web_argv, worker_argv
from launcher.embedded_redis import EmbeddedRedis
from launcher.first_run import UnsafeStart, prepare_access
from launcher.migrate import upgrade
from launcher.net import http_ok, local_url, wait_until
from launcher.options import Options
from launcher.processes import ManagedProcess, ProcessExited
from workers.redis_urls import redis_client
from workers.settings import without_web_secrets

log = logging.getLogger("agentdeck.launcher")

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class StartupError(RuntimeError):
    """A piece of the platform did not come up."""


def redact(url: str) -> str:
    """A URL without its password, for printing."""
    scheme, sep, rest = url.partition("://")
    creds, at, host = rest.rpartition("@")
    if not sep or not at or ":" not in creds:
        return url
    return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}"


class Launcher:
    def __init__(self, options: Options, out: TextIO = sys.stdout) -> None:
        self.options = options
        self.out = out
        self.embedded: EmbeddedRedis | None = None
        self.redis_url = options.redis_url or ""
        self.worker: ManagedProcess | None = None
        self.web: ManagedProcess | None = None
        self._signals = 0
        self._stopping = False
        self._lock: TextIO | None = None
        self.login_secret: str | None = None

    # -- signals ------------------------------------------------------------------
    def install_signal_handlers(self) -> None:
        for sig in STOP_SIGNALS:
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self._signals += 1
        if self._signals == 1:
            log.info("%s: stopping (again to stop at once)", signal.Signals(signum).name)

    @property
    def stop_requested(self) -> bool:
        return self._signals > 0

    @property
    def forced(self) -> bool:
        return self._signals > 1

    # -- the whole run --------------------------------------------------------------
    def run(self) -> int:
        """Start everything, wait for a stop signal or a crash, stop everything."""
        self.install_signal_handlers()
        code = 0
        try:
            self.start()
            if not self.stop_requested:
                self.announce()
                code = self.supervise()
        except (StartupError, ProcessExited, TimeoutError) as exc:
            if not self.stop_requested:
                log.error("%s", exc)
                code = 1
        except Exception:
            log.exception("the launcher failed")
            code = 1
        finally:
            self.shutdown()
        return code

    def start(self) -> None:
        o = self.options
        o.data_dir.mkdir(parents=True, exist_ok=True)
        self.lock_data_dir()
        self.start_redis()
        log.info("migrating %s", redact(o.database_url))
        upgrade(o.database_url)
        try:
            self.login_secret = prepare_access(
                o.database_url,
                host=o.host,
                admin_token=os.environ.get("AGENTDECK_ADMIN_TOKEN", ""),
                insecure_no_auth=o.insecure_no_auth,
            )
        except UnsafeStart as exc:
            raise StartupError(str(exc)) from None
        if self.stop_requested:
            return
        env = self.child_env()
        echo = None if o.quiet else sys.stderr
        # The children run where the launcher was started: AGENTDECK_AGENT_MODULES
        # import from there (or from PYTHONPATH), as with `python -m celery` by hand.
        workdir = Path.cwd()
        if o.worker:
            self.worker = ManagedProcess(
                "worker",
                worker_argv(concurrency=o.concurrency, hostname=o.worker_name, queues=o.queues),
                env=without_web_secrets(env),  # agents' code runs there
                cwd=workdir,
                log_path=o.log_dir / "worker.log",
                echo=echo,
            )
            self.worker.start()
        if o.web:
            self.web = ManagedProcess(
                "web",
                web_argv(host=o.host, port=o.port, processes=o.web_processes),
                env=env,
                cwd=workdir,
                log_path=o.log_dir / "web.log",
                echo=echo,
            )
            self.web.start()
        if self.worker is not None:
            self.worker.wait_for_line(
                WORKER_READY, o.startup_timeout, abort=lambda: self.stop_requested
            )
        if self.web is not None:
            self.wait_web_healthy()

    def lock_data_dir(self) -> None:
        """One launcher per data directory: two Valkeys on one append-only file corrupt it."""
        path = self.options.data_dir / "launcher.lock"
        self._lock = open(path, "a+")  # noqa: SIM115 (held until the process exits)
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StartupError(
                f"another launcher is using {self.options.data_dir}; stop it or pass --data-dir"
            ) from None
        self._lock.truncate(0)
        self._lock.write(f"{os.getpid()}\n")
        self._lock.flush()

    def start_redis(self) -> None:
        o = self.options
        events_url = os.environ.get("AGENTDECK_EVENTS_URL")
        if events_url:  # the event bus on a Redis of its own: the launcher only waits for it
            self.wait_redis(events_url, "the event bus's Redis")
        if o.redis_url:
            self.wait_redis(o.redis_url, "Redis")
            return
        self.embedded = EmbeddedRedis(o.redis_dir, port=o.redis_port or None)
        self.redis_url = self.embedded.start(timeout=min(o.startup_timeout, 30.0))
        log.info("embedded Valkey at %s (data in %s)", redact(self.redis_url), o.redis_dir)

    def wait_redis(self, url: str, what: str) -> None:
        client = redis_client(url, socket_connect_timeout=2, socket_timeout=2)
        try:
            if not wait_until(
                lambda: _pings(client),
                self.options.startup_timeout,
                interval=0.5,
                abort=lambda: self.stop_requested,
            ):
                raise StartupError(f"{what} at {redact(url)} does not answer")
        finally:
            client.close()

    def child_env(self) -> dict[str, str]:
        o = self.options
        overrides = {
            "REDIS_URL": self.redis_url,
            "DATABASE_URL": o.database_url,
            "AGENTDECK_DATA_DIR": str(o.data_dir),
            "AGENTDECK_HOST": o.host,
            "AGENTDECK_PORT": str(o.port),
        }
        if o.insecure_no_auth:
            overrides["AGENTDECK_INSECURE_NO_AUTH"] = "1"
        if o.queues:  # --queues: the web accepts jobs for exactly the worker's queues
            overrides["AGENTDECK_QUEUES"] = ",".join(o.queues)
        return child_env(os.environ, overrides)

    def wait_web_healthy(self) -> None:
        assert self.web is not None
        web = self.web
        url = local_url(self.options.host, self.options.port) + "/healthz"
        healthy = wait_until(
            lambda: not web.running or http_ok(url, timeout=1.0),
            self.options.startup_timeout,
            interval=0.1,
            abort=lambda: self.stop_requested,
        )
        if not web.running:
            raise StartupError(f"the web server exited (code {web.returncode}):\n{web.tail()}")
        if not healthy and not self.stop_requested:
            raise StartupError(f"{url} did not answer within {self.options.startup_timeout}s")

    def announce(self) -> None:
        o = self.options
        lines = []
        if self.web is not None:
            lines.append(f"Agentdeck is running at {local_url(o.host, o.port)}/")
            if self.login_secret:
                link = f"{local_url(o.host, o.port)}/login?token={self.login_secret}"
                lines.append(f"  log in:   {link}  (works once, for a day)")
        else:
            lines.append("Agentdeck is running (no web server)")
        where = f" (embedded Valkey, data in {o.redis_dir})" if self.embedded else ""
        lines.append(f"  redis:    {redact(self.redis_url)}{where}")
        if os.environ.get("AGENTDECK_EVENTS_URL"):
            lines.append(f"  events:   {redact(os.environ['AGENTDECK_EVENTS_URL'])}")
        lines.append(f"  database: {redact(o.database_url)}")
        if self.worker is not None:
            name = o.worker_name.replace("%h", socket.gethostname())
            lines.append(f"  worker:   {name} (concurrency {o.concurrency})")
        lines.append(f"  logs:     {o.log_dir}")
        lines.append("Press Ctrl-C to stop.")
        self.out.write("\n".join(lines) + "\n")
        self.out.flush()

    def supervise(self) -> int:
        """Wait for a stop signal (0) or for a child to die (1)."""
        children = [p for p in (self.worker, self.web) if p is not None]
        wait_until(
            lambda: self.stop_requested or any(not p.running for p in children),
            float("inf"),
            interval=0.2,
        )
        for p in children:
            if not p.running and not self.stop_requested:
                log.error("%s exited unexpectedly (code %s):\n%s", p.name, p.returncode, p.tail())
                return 1
        return 0

    # -- stopping -----------------------------------------------------------------------
    def shutdown(self) -> None:
        """SIGTERM web and worker, wait, SIGKILL what is left, then stop Redis."""
        if self._stopping:
            return
        self._stopping = True
        timeout = self.options.stop_timeout
        children = [p for p in (self.web, self.worker) if p is not None and p.pid is not None]
        for p in children:
            p.terminate()
        wait_until(
            lambda: not any(p.running for p in children),
            timeout,
            interval=0.1,
            abort=lambda: self.forced,
        )
        for p in children:
            if p.running:
                log.warning("%s did not stop within %ss: killing it", p.name, timeout)
            p.stop(timeout=0)  # SIGKILL if still running, and any stragglers in its group
        if self.embedded is not None:
            self.embedded.stop(timeout=timeout)
        log.info("stopped")


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
