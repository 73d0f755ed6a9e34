"""A value reused for a moment: what every request would otherwise ask Redis for anew.

Submitting a job answers whether an online worker consumes its queue (and
checks the queue against the allowed ones), which takes the list of workers
from Redis. Asked per request, that list cost a Redis round trip and the
decoding of every worker's heartbeat; reused for `max_age`, it costs neither.
A caller that gets a "no" from a listing older than a moment asks again
(`get(max_age=...)` smaller), so a worker that just came online counts at once,
and one that just went away is noticed within `max_age`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Recent(Generic[T]):
    def __init__(self, fetch: Callable[[], T], max_age: float) -> None:
        self.fetch = fetch
        self.max_age = max_age
        self._value: T | None = None
        self._at = float("-inf")
        self._lock = threading.Lock()

    def get(self, max_age: float | None = None) -> T:
        """The value, fetched again if older than `max_age` (default: the one given)."""
        limit = self.max_age if max_age is None else max_age
        with self._lock:
            if self._value is not None and time.monotonic() - self._at <= limit:
                return self._value
        value = self.fetch()  # outside the lock: a slow store holds no one else up
        with self._lock:
            self._value, self._at = value, time.monotonic()
        return value

    def forget(self) -> None:
        with self._lock:
            self._value, self._at = None, float("-inf")
