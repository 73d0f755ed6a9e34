"""The web process's background loops: one base for their thread, pacing and failures.

A `Loop` runs `tick()` on a named daemon thread, again after the seconds
`tick` returns (`every` when it returns None) or sooner when `wake()` is
called. A tick that raises is counted and logged (the first of a run of
failures with its traceback, then every `LOG_EVERY`th) and the next one comes
after a backoff that doubles up to a cap; a wake does not cut a backoff short,
so a loop woken per event does not spin on a store that is away. A tick may
run for long (the hub's listener does): it then watches `stopping`, and calls
`healthy()` once it works again so that its next failure backs off from the
start.

`Loops` holds every loop of an app: `create_app` starts them, a test stops them.
"""

from __future__ import annotations

import logging
import threading

log = logging.getLogger("agentdeck.loops")

LOG_EVERY = 10


class Loop:
    def __init__(
        self,
        name: str,
        *,
        every: float,
        backoff: float = 0.1,
        backoff_cap: float = 5.0,
        wait_first: bool = False,
    ) -> None:
        self.name = name
        self.every = every
        self.backoff = backoff
        self.backoff_cap = backoff_cap
        self.wait_first = wait_first  # the first tick comes after `every`, not at once
        self.failures = 0
        self.last_error = ""
        self._loop_streak = 0  # failures in a row
        self._loop_cond = threading.Condition()
        self._loop_woken = False
        self._loop_stopping = False
        self._loop_thread: threading.Thread | None = None

    def tick(self) -> float | None:
        """One round of work; the seconds until the next (None: `every`)."""
        raise NotImplementedError

    # -- control --------------------------------------------------------------
    def start(self) -> None:
        name = f"agentdeck-{self.name}"
        self._loop_thread = threading.Thread(target=self._loop_run, name=name, daemon=True)
        self._loop_thread.start()

    def stop(self, timeout: float | None = None) -> bool:
        """Ask the loop to end; with `timeout`, wait for it. False if it still runs."""
        with self._loop_cond:
            self._loop_stopping = True
            self._loop_cond.notify_all()
        thread = self._loop_thread
        if timeout is not None and thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            return not thread.is_alive()
        return True

    def wake(self) -> None:
        """Run the next tick now (or as soon as the current one ends)."""
        if self._loop_woken:
            return  # already pending: spare the lock (the hub wakes the recorder per event)
        with self._loop_cond:
            self._loop_woken = True
            self._loop_cond.notify_all()

    @property
    def stopping(self) -> bool:
        return self._loop_stopping

    @property
    def running(self) -> bool:
        return self._loop_thread is not None and self._loop_thread.is_alive()

    def healthy(self) -> None:
        """Working again, mid-tick: a failure after this backs off from the start."""
        if self._loop_streak:
            log.info("%s works again after %d failures", self.name, self._loop_streak)
            self._loop_streak = 0

    # -- the thread ----------------------------------------------------------------
    def _loop_run(self) -> None:
        if self.wait_first:
            self._loop_pause(self.every, wakeable=True)
        while not self._loop_stopping:
            try:
                delay = self.tick()
            except Exception as exc:
                self._loop_failed(exc)
                self._loop_pause(self._loop_backoff(), wakeable=False)
                continue
            self.healthy()
            self._loop_pause(self.every if delay is None else delay, wakeable=True)

    def _loop_failed(self, exc: Exception) -> None:
        self.failures += 1
        self._loop_streak += 1
        self.last_error = repr(exc)[:500]
        if self._loop_streak == 1:
            delay = self._loop_backoff()
            log.warning("%s failed (%r); again in %.1fs", self.name, exc, delay, exc_info=True)
        elif self._loop_streak % LOG_EVERY == 0:
            log.warning("%s failed %d times in a row, last: %r", self.name, self._loop_streak, exc)

    def _loop_backoff(self) -> float:
        return min(self.backoff * 2 ** min(self._loop_streak - 1, 30), self.backoff_cap)

    def _loop_pause(self, seconds: float, *, wakeable: bool) -> None:
        with self._loop_cond:
            if seconds > 0 and not self._loop_stopping and not (wakeable and self._loop_woken):
                self._loop_cond.wait(seconds)
            if wakeable:
                self._loop_woken = False


class Loops:
    """An app's loops, started and stopped together."""

    def __init__(self) -> None:
        self.loops: list[Loop] = []

    def add(self, *loops: Loop) -> None:
        self.loops.extend(loops)

    def start(self) -> None:
        for loop in self.loops:
            loop.start()

    def stop(self, timeout: float = 5.0) -> list[str]:
        """Stop them all, waiting up to `timeout` each; the names of those still running."""
        for loop in self.loops:
            loop.stop()
        return [loop.name for loop in self.loops if not loop.stop(timeout)]

    def failures(self) -> dict[str, int]:
        return {loop.name: loop.failures for loop in self.loops}
