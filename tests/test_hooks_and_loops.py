"""The hook registry and the background loop base, on their own (no Redis, no server)."""

from __future__ import annotations

import logging
import threading

import pytest

from launcher.net import wait_until
from webapp.loops import Loop, Loops
from workers.hooks import Hook, Hooks


class Counting(Hook):
    def __init__(self) -> None:
        self.envelopes: list[tuple[str, str]] = []
        self.ticks = 0

    def on_envelope(self, raw: str, job: str) -> None:
        self.envelopes.append((raw, job))

    def every_tick(self) -> None:
        self.ticks += 1


class Broken(Hook):
    def every_tick(self) -> None:
        raise RuntimeError("boom")


def test_a_hook_is_called_at_the_points_it_overrides_only() -> None:
    # given a hook overriding two of the points
    hook = Counting()
    hooks = Hooks(hook)
    # when every point fires
    hooks.on_envelope("{}", "j1")
    hooks.every_tick()
    hooks.every_scan()
    hooks.before_publish_batch()
    # then it saw its two, and the registry keeps nothing to call for the others
    assert (hook.envelopes, hook.ticks) == ([("{}", "j1")], 1)
    assert hooks._scan == [] and hooks._publish == []


def test_a_failing_hook_is_logged_and_counted_and_the_others_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # given a broken hook registered before a working one
    good = Counting()
    hooks = Hooks(Broken(), good)
    # when the point fires twice
    with caplog.at_level(logging.ERROR, logger="agentdeck.hooks"):
        hooks.every_tick()
        hooks.every_tick()
    # then the working hook ran both times, both failures were counted
    assert good.ticks == 2 and hooks.failures == 2
    # and the first failure was logged with its hook's name and traceback
    (record,) = caplog.records
    assert "Broken.every_tick" in record.getMessage() and record.exc_info is not None


class Ticker(Loop):
    def __init__(self, fail_first: int = 0, **kw: float) -> None:
        super().__init__("ticker", **kw)  # type: ignore[arg-type]
        self.ticks = 0
        self.fail_first = fail_first
        self.pauses: list[float] = []
        self.ticked = threading.Event()

    def tick(self) -> float | None:
        self.ticks += 1
        self.ticked.set()
        if self.ticks <= self.fail_first:
            raise ConnectionError(f"away ({self.ticks})")
        return None

    def _loop_pause(self, seconds: float, *, wakeable: bool) -> None:
        self.pauses.append(seconds)
        super()._loop_pause(seconds, wakeable=wakeable)


def test_a_loop_backs_off_on_failure_up_to_its_cap_then_recovers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # given a loop whose first 5 ticks fail, backing off from 0.01 s up to 0.04 s
    loop = Ticker(fail_first=5, every=0.01, backoff=0.01, backoff_cap=0.04)
    # when it runs until it works again
    with caplog.at_level(logging.INFO, logger="agentdeck.loops"):
        loop.start()
        assert wait_until(lambda: loop.ticks >= 7, 5)
        assert loop.stop(timeout=5)
    # then the failures were counted, the waits doubled to the cap, and after the
    # recovery it went back to its interval
    assert loop.failures == 5 and "away (5)" in loop.last_error
    assert loop.pauses[:6] == [0.01, 0.02, 0.04, 0.04, 0.04, 0.01]
    # and the first failure was logged with its traceback, the recovery too
    messages = [r.getMessage() for r in caplog.records]
    assert any("ticker failed" in m for m in messages)
    assert any("works again after 5 failures" in m for m in messages)
    assert caplog.records[0].exc_info is not None


def test_a_loop_is_woken_early_and_stops_at_once() -> None:
    # given a loop that ticks every minute, past its first tick
    loop = Ticker(every=60.0)
    loop.start()
    assert loop.ticked.wait(5)
    loop.ticked.clear()
    # when it is woken, then it ticks again without waiting the minute
    loop.wake()
    assert loop.ticked.wait(5) and loop.ticks == 2
    # and when it is stopped mid-wait, its thread ends at once
    assert loop.stop(timeout=5) and not loop.running


def test_loops_start_and_stop_together_and_report_their_failures() -> None:
    # given two loops, one failing every time (but slowly retried)
    loops = Loops()
    ok, failing = Ticker(every=60.0), Ticker(fail_first=10**6, every=60.0, backoff=60.0)
    failing.name = "failing"
    loops.add(ok, failing)
    # when they are started, and have each ticked
    loops.start()
    assert ok.ticked.wait(5) and wait_until(lambda: failing.failures == 1, 5)
    # then the failures are reported by loop, and stopping leaves none running
    assert loops.failures() == {"ticker": 0, "failing": 1}
    assert loops.stop(timeout=5) == []
    assert not ok.running and not failing.running
