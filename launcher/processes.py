"""Child processes the launcher (and the test fixtures) start, watch and stop.

Each child runs in its own session (process group), so Ctrl-C in a terminal
reaches only the launcher, which then stops the children in order; a forced
kill takes the whole group (gunicorn's workers, Celery's pool) with it. On
Linux each child also gets SIGTERM if its parent dies without cleaning up.
The child's output (stdout and stderr) goes to a log file, optionally echoed
with a prefix, and can be waited on line by line.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, TextIO

_PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None
MAX_LINES = 5_000


def _die_with_parent() -> None:  # runs in the child between fork and exec
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)


class ProcessExited(RuntimeError):
    """The child exited while someone waited for it to become ready."""


class ManagedProcess:
    """One child process: start, wait for an output line, stop (TERM, then KILL)."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        cwd: Path,
        log_path: Path,
        echo: TextIO | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = dict(env)
        self.cwd = Path(cwd)
        self.log_path = Path(log_path)
        self.echo = echo
        self._popen: subprocess.Popen[bytes] | None = None
        self._pump: threading.Thread | None = None
        self._cond = threading.Condition()
        self._lines: deque[str] = deque(maxlen=MAX_LINES)
        self._dropped = 0  # lines that fell off the front of `_lines` in this run
        self._eof = False

    # -- state ----------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        return None if self._popen is None else self._popen.pid

    @property
    def running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self._popen is None else self._popen.poll()

    def tail(self, lines: int = 40) -> str:
        with self._cond:
            return "\n".join(list(self._lines)[-lines:])

    # -- lifecycle --------------------------------------------------------------
    def start(self) -> None:
        if self.running:
            raise RuntimeError(f"{self.name} is already running (pid {self.pid})")
        self._join_pump()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self._cond:
            self._lines.clear()
            self._dropped = 0
            self._eof = False
        log = open(self.log_path, "ab")  # noqa: SIM115 (the pump thread closes it)
        log.write(f"---- {time.strftime('%Y-%m-%d %H:%M:%S')} starting {self.argv}\n".encode())
        log.flush()
        try:
            self._popen = subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent if _LIBC is not None else None,
            )
        except BaseException:
            log.close()
            raise
        assert self._popen.stdout is not None
        self._pump = threading.Thread(
            target=self._pump_output,
            args=(self._popen.stdout, log),
            name=f"output-{self.name}",
            daemon=True,
        )
        self._pump.start()

    def _pump_output(self, stream: IO[bytes], log: IO[bytes]) -> None:
        try:
            for raw in iter(stream.readline, b""):
                log.write(raw)
                log.flush()
                line = raw.decode(errors="replace").rstrip("\r\n")
                if self.echo is not None:
                    with contextlib.suppress(OSError, ValueError):
                        self.echo.write(f"{self.name:>6} | {line}\n")
                        self.echo.flush()
                with self._cond:
                    if len(self._lines) == self._lines.maxlen:
                        self._dropped += 1
                    self._lines.append(line)
                    self._cond.notify_all()
        finally:
            stream.close()
            log.close()
            with self._cond:
                self._eof = True
                self._cond.notify_all()

    def wait_for_line(
        self,
        pattern: str | re.Pattern[str],
        timeout: float,
        *,
        abort: Callable[[], bool] | None = None,
    ) -> str:
        """The first output line of this run matching `pattern` (a regex).

        Raises `ProcessExited` if the output ends first and `TimeoutError`
        after `timeout` seconds (or when `abort()` turns true).
        """
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout
        seen = 0  # absolute index of the next line to look at
        with self._cond:
            while True:
                start = max(seen - self._dropped, 0)
                for line in list(self._lines)[start:]:
                    if regex.search(line):
                        return line
                seen = self._dropped + len(self._lines)
                if self._eof:
                    raise ProcessExited(
                        f"{self.name} exited (code {self.returncode}) before printing "
                        f"{regex.pattern!r}; last output:\n{self.tail()}"
                    )
                left = deadline - time.monotonic()
                if left <= 0 or (abort is not None and abort()):
                    raise TimeoutError(
                        f"{self.name} did not print {regex.pattern!r} within {timeout}s; "
                        f"last output:\n{self.tail()}"
                    )
                self._cond.wait(min(left, 0.25))

    def send_signal(self, sig: int) -> None:
        if self._popen is not None and self._popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self._popen.send_signal(sig)

    def terminate(self) -> None:
        """Ask the child to stop (SIGTERM to the child only; it stops its own children)."""
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL the child's whole process group, at once."""
        if self._popen is None:
            return
        self._kill_group()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._popen.wait(timeout=10)
        self._join_pump()

    def wait(self, timeout: float) -> int | None:
        if self._popen is None:
            return None
        try:
            return self._popen.wait(timeout=max(timeout, 0))
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, wait up to `timeout`, then SIGKILL the group; returns the exit code."""
        if self._popen is None:
            return None
        self.terminate()
        code = self.wait(timeout)
        if code is None:
            self.kill()
        else:
            self._kill_group()  # stragglers (e.g. pool processes) of a child that exited
        self._join_pump()
        return self.returncode

    def _kill_group(self) -> None:
        if self._popen is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._popen.pid, signal.SIGKILL)

    def _join_pump(self) -> None:
        if self._pump is not None:
            self._pump.join(timeout=5)
            self._pump = None
