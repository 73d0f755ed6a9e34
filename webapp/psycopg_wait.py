"""psycopg's waits in a gevent web process, without a trip through the gevent hub when
the socket is ready already.

With `select` monkey-patched, psycopg (3.3) waits with gevent's poll(): a watcher, a
timeout and a switch to the hub for every wait, even when the socket is ready at once.
Its pipelined executemany waits once a row, so the recorder's UPDATEs and event INSERTs
cost ~90 us of CPU a row, mostly waiting. Here a wait first asks the real poll() with
no timeout, as psycopg's own asyncio wait does (`wait_async`): a 20,000-row
executemany went from 88 to 23 us a row, and the recorder's CPU a job fell by ~40%.
Only a socket that is not ready (the server has not answered yet) waits in gevent,
and so does a run of ready waits longer than MAX_BUSY_TIME, so that a long
executemany still lets the other greenlets run (every 5 ms at most).
"""

from __future__ import annotations

import select
import time
from collections.abc import Callable
from typing import Any

from psycopg import errors, waiting

MAX_BUSY_TIME = 0.005  # as psycopg's wait_async

_MASKS = {  # psycopg's wait state -> poll events
    waiting.WAIT_R: select.POLLIN,
    waiting.WAIT_W: select.POLLOUT,
    waiting.WAIT_RW: select.POLLIN | select.POLLOUT,
}

_real_poll: Callable[[], Any] | None = None
_last_yield = 0.0  # when a wait last let the other greenlets run


def install() -> bool:
    """Use `wait` for psycopg's connections in this process if gevent patched select
    (gunicorn's gevent worker) and psycopg chose its wait_poll for it. True if in use."""
    global _real_poll
    try:
        from gevent import monkey
    except ImportError:  # pragma: no cover (gevent is a runtime dependency)
        return False
    if not monkey.is_module_patched("select"):
        return False
    if waiting.wait is wait:
        return True
    if waiting.wait is not waiting.wait_poll:  # psycopg was imported before gevent patched
        return False
    _real_poll = monkey.get_original("select", "poll")
    waiting.wait = wait
    return True


def wait(gen: Any, fileno: int, interval: float = 0.0, timeout: float | None = None) -> Any:
    """psycopg's `waiting.wait_poll`, asking first whether the socket is ready now."""
    global _last_yield
    assert _real_poll is not None
    masks = _MASKS
    deadline = time.monotonic() + timeout if timeout is not None else None
    interval = max(interval, 0.0)
    try:
        s = next(gen)
        now_poll = _real_poll()
        now_poll.register(fileno, masks[s])
        green_poll = None
        while True:
            events = now_poll.poll(0)
            if events and time.monotonic() - _last_yield >= MAX_BUSY_TIME:
                events = []  # ready, but the other greenlets have waited long enough
            if not events:
                if green_poll is None:
                    green_poll = select.poll()  # gevent's: waits in the hub
                    green_poll.register(fileno, masks[s])
                t = interval
                if deadline is not None:
                    t = max(0.0, min(interval, deadline - time.monotonic()))
                events = green_poll.poll(int(t * 1000.0))
                _last_yield = time.monotonic()
            ready: int = waiting.READY_NONE
            if events:
                ev = events[0][1]
                if ev & select.POLLIN:
                    ready = waiting.READY_R
                if ev & select.POLLOUT:
                    ready |= waiting.READY_W
                if not ready and ev & ~(select.POLLIN | select.POLLOUT):
                    raise errors.OperationalError("connection socket closed")
            new = gen.send(ready)
            if new != s:
                s = new
                now_poll.modify(fileno, masks[s])
                if green_poll is not None:
                    green_poll.modify(fileno, masks[s])
            if deadline is not None and time.monotonic() >= deadline:
                raise errors._WaitTimeout("wait timeout expired")
    except StopIteration as ex:
        return ex.value
