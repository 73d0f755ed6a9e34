"""One connected WebSocket client: its bounded outgoing queue and its subscriptions."""

from __future__ import annotations

import threading
import time
from collections import deque

from webapp.auth.roles import Principal
from webapp.subscription import JobSubscription

CLOSE_GOING_AWAY = 1001
CLOSE_TOO_SLOW = 4001
CLOSE_UNAUTHORIZED = 4401  # no valid credentials, or they were revoked
MERGE_LIMIT = 256 * 1024  # a frame of merged events grows to about this many characters


def events_frame(topic: str, raws: list[str]) -> str:
    # Envelopes are already JSON: splice them in rather than decode and re-encode.
    return '{"type":"events","topic":"' + topic + '","events":[' + ",".join(raws) + "]}"


class Client:
    """Frames wait here for the client's sender; past `limit` bytes the client is cut off."""

    def __init__(self, limit_bytes: int, principal: Principal | None = None) -> None:
        self.limit = limit_bytes
        self.principal = principal  # None until the `auth` op succeeds
        self.opened_at = time.monotonic()
        self.lock = threading.Lock()  # guards changes to subs (the listener reads it freely)
        self.subs: dict[str, JobSubscription] = {}
        self.topics: set[str] = set()
        # Queued frames: plain text, or (topic, [envelope, ...]) merged at send time.
        self._queue: deque[str | tuple[str, list[str]]] = deque()
        self._bytes = 0
        self._cond = threading.Condition()
        self.close_code: int | None = None
        self.closing: tuple[int, str] | None = None  # close once what is queued is sent
        self.close_reason = ""

    @property
    def closed(self) -> bool:
        return self.close_code is not None

    def put(self, frame: str) -> bool:
        return self._enqueue(frame, len(frame))

    def put_events(self, topic: str, raws: list[str]) -> bool:
        """Queue envelopes for `topic`; consecutive ones leave as one frame."""
        return self._enqueue((topic, raws), sum(len(r) for r in raws) + len(raws))

    def _enqueue(self, item: str | tuple[str, list[str]], size: int) -> bool:
        with self._cond:
            if self.close_code is not None:
                return False
            if self._bytes + size > self.limit:
                self._close_locked(CLOSE_TOO_SLOW, "too slow: outgoing queue over its byte bound")
                return False
            last = self._queue[-1] if self._queue else None
            if (
                isinstance(item, tuple)
                and isinstance(last, tuple)
                and last[0] == item[0]
                and sum(len(r) for r in last[1]) < MERGE_LIMIT
            ):
                last[1].extend(item[1])  # a burst of one job's events: one frame
            else:
                self._queue.append(item if isinstance(item, str) else (item[0], list(item[1])))
            self._bytes += size
            self._cond.notify()
            return True

    def take(self, timeout: float) -> list[str]:
        """Every queued frame, waiting up to `timeout` for the first one."""
        with self._cond:
            if not self._queue and self.close_code is None:
                self._cond.wait(timeout)
            items = list(self._queue)
            self._queue.clear()
            self._bytes = 0
        return [i if isinstance(i, str) else events_frame(i[0], i[1]) for i in items]

    def put_last(self, frame: str, code: int, reason: str) -> None:
        """Send `frame`, then close: the sender closes once the queue is drained."""
        with self._cond:
            if self.close_code is not None or self.closing is not None:
                return
            self._queue.append(frame)
            self._bytes += len(frame)
            self.closing = (code, reason)
            self._cond.notify()

    def close(self, code: int, reason: str = "") -> None:
        with self._cond:
            self._close_locked(code, reason)

    def _close_locked(self, code: int, reason: str) -> None:
        if self.close_code is None:
            self.close_code = code
            self.close_reason = reason
            self._queue.clear()
            self._bytes = 0
        self._cond.notify_all()

    # -- job subscriptions -----------------------------------------------------------
    def add_sub(self, sub: JobSubscription) -> None:
        """Subscribe; a subscription to the same topic before is closed (its replay, if
        one is under way, then sends nothing)."""
        with self.lock:
            old = self.subs.get(sub.topic)
            self.subs[sub.topic] = sub
        if old is not None:
            old.close()

    def drop_sub(self, topic: str, sub: JobSubscription | None = None) -> bool:
        """Unsubscribe from `topic` (only if its subscription is still `sub`, when given)."""
        with self.lock:
            current = self.subs.get(topic)
            if current is None or (sub is not None and current is not sub):
                return False
            del self.subs[topic]
        current.close()
        return True
