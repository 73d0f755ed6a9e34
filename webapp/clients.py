"""One connected WebSocket client: its socket's outgoing side and its subscriptions.

A frame is written straight to the socket, without blocking, by whoever sends it
(the hub's listener for a fan-out, with bytes built once for every client).
Only when the socket would block does the client get a queue, and a flusher of
its own that writes what waits once the socket drains, in order; a burst of
one topic's events waiting there leaves as one frame. Past `limit` queued
bytes the client is too slow: it is closed (4001). An idle client holds no
queue, no buffer and no thread.

Closing sends the close frame after whatever frame is half written (and, for
`put_last`, after what is queued), then shuts the socket's reading side, which
ends the connection's reader (ws.py).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections import deque

from webapp import wsframes
from webapp.auth.roles import Principal
from webapp.subscription import JobSubscription

CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_POLICY = 1008  # no pong to the last ping
CLOSE_TOO_SLOW = 4001
CLOSE_UNAUTHORIZED = 4401  # no valid credentials, or they were revoked
MERGE_LIMIT = 256 * 1024  # a frame of merged events grows to about this many characters
_DONTWAIT = getattr(socket, "MSG_DONTWAIT", 0)

Item = bytes | tuple[str, list[str]]  # a frame, or a topic's envelopes merged at send time


def events_frame(topic: str, raws: list[str]) -> str:
    # Envelopes are already JSON: splice them in rather than decode and re-encode.
    return '{"type":"events","topic":"' + topic + '","events":[' + ",".join(raws) + "]}"


def events_bytes(topic: str, raws: list[str]) -> bytes:
    return wsframes.text(events_frame(topic, raws))


class Client:
    """Writes frames to `sock` at once when it can take them; queues them when not."""

    __slots__ = (
        "limit", "principal", "opened_at", "lock", "subs", "topics", "awaiting_pong",
        "close_code", "close_reason", "_sock", "_raw", "_out", "_queue", "_bytes",
        "_partial", "_drain", "_close_frame", "_flusher", "__weakref__",
    )  # fmt: skip

    def __init__(self, limit_bytes: int, principal: Principal | None, sock: socket.socket) -> None:
        self.limit = limit_bytes
        self.principal = principal  # None until the `auth` op succeeds
        self.opened_at = time.monotonic()
        self.lock = threading.Lock()  # guards changes to subs (the listener reads it freely)
        self.subs: dict[str, JobSubscription] = {}
        self.topics: set[str] = set()
        self.awaiting_pong = False  # pinged, no pong yet
        self.close_code: int | None = None
        self.close_reason = ""
        self._sock = sock  # blocking writes (under gevent they wait cooperatively)
        # gevent's socket wraps the OS socket, non-blocking: writing to that one never waits.
        self._raw: socket.socket = getattr(sock, "_sock", sock)
        self._out = threading.Lock()  # guards everything below
        self._queue: deque[Item] | None = None  # made when the socket first blocks
        self._bytes = 0  # queued, and what is left of a half-written frame
        self._partial: memoryview | None = None  # the rest of a half-written frame
        self._drain = False  # closing: send what is queued first
        self._close_frame: bytes | None = None  # to send once the rest is out
        self._flusher: threading.Thread | None = None

    @property
    def closed(self) -> bool:
        return self.close_code is not None

    # -- sending -----------------------------------------------------------------
    def put(self, message: str) -> bool:
        """Send a text frame."""
        return self.put_bytes(wsframes.text(message))

    def put_bytes(self, data: bytes) -> bool:
        """Send a ready-made frame (text or control)."""
        with self._out:
            if self.close_code is not None:
                return False
            if self._queue or self._flusher is not None:
                return self._enqueue(data, len(data))
            return self._write_now(data)

    def put_events(self, topic: str, raws: list[str], frame: bytes | None = None) -> bool:
        """Send envelopes of `topic`; `frame` is their frame when the caller built it (once,
        for every client). Queued, consecutive ones of a topic leave as one frame."""
        with self._out:
            if self.close_code is not None:
                return False
            if self._queue or self._flusher is not None:
                return self._enqueue((topic, raws), sum(map(len, raws)) + len(raws))
            return self._write_now(frame if frame is not None else events_bytes(topic, raws))

    def put_last(self, message: str, code: int, reason: str) -> None:
        """Send `message` after what is queued, then close."""
        data = wsframes.text(message)
        with self._out:
            if self.close_code is not None:
                return
            if self._queue or self._flusher is not None:
                self._enqueue(data, 0)  # over the bound or not, this one goes
            else:
                self._write_now(data)
            self._close_locked(code, reason, drain=True)

    def close(self, code: int, reason: str = "") -> None:
        """Drop what is queued, send a close frame, stop reading."""
        with self._out:
            self._close_locked(code, reason, drain=False)

    def finish(self, timeout: float) -> bool:
        """Wait for the flusher to write what it still may; False if it is stuck."""
        flusher = self._flusher
        if flusher is not None and flusher is not threading.current_thread():
            flusher.join(timeout)
            return not flusher.is_alive()
        return True

    def abort(self) -> None:
        """Cut the connection: a stuck flusher fails at once."""
        with contextlib.suppress(OSError):
            self._raw.shutdown(socket.SHUT_RDWR)

    # -- with `_out` held ------------------------------------------------------------
    def _write_now(self, data: bytes) -> bool:
        try:
            n = self._raw.send(data, _DONTWAIT)
        except BlockingIOError:
            n = 0
        except OSError:  # the peer is gone
            self._close_locked(CLOSE_NORMAL, "", drain=False, sendable=False)
            return False
        if n < len(data):
            self._partial = memoryview(data)[n:]
            self._bytes += len(data) - n
            self._start_flusher()
        return True

    def _enqueue(self, item: Item, size: int) -> bool:
        if size and self._bytes + size > self.limit:
            self._close_locked(CLOSE_TOO_SLOW, "too slow: outgoing queue over its byte bound")
            return False
        queue = self._queue
        if queue is None:
            queue = self._queue = deque()
        last = queue[-1] if queue else None
        if (
            isinstance(item, tuple)
            and isinstance(last, tuple)
            and last[0] == item[0]
            and sum(map(len, last[1])) < MERGE_LIMIT
        ):
            last[1].extend(item[1])  # a burst of one topic's events: one frame
        else:
            queue.append(item if isinstance(item, bytes) else (item[0], list(item[1])))
        self._bytes += size
        self._start_flusher()
        return True

    def _close_locked(
        self, code: int, reason: str, *, drain: bool = False, sendable: bool = True
    ) -> None:
        if self.close_code is not None:
            return
        self.close_code = code
        self.close_reason = reason
        self._drain = drain
        if not drain and self._queue:
            self._queue.clear()
        if sendable:
            self._close_frame = wsframes.close(code, reason)
            if self._flusher is None and not self._queue and self._partial is None:
                frame, self._close_frame = self._close_frame, None
                self._write_now(frame)  # a close frame half written is finished by a flusher
            elif self._flusher is None:
                self._start_flusher()
        with contextlib.suppress(OSError):
            self._raw.shutdown(socket.SHUT_RD)  # the reader stops here

    def _start_flusher(self) -> None:
        if self._flusher is None:
            self._flusher = threading.Thread(target=self._flush, daemon=True)
            self._flusher.start()

    def _take_locked(self) -> bytes:
        """What to write next: the rest of a frame, what is queued, the close frame."""
        chunks: list[bytes | memoryview] = []
        if self._partial is not None:
            chunks.append(self._partial)
            self._partial = None
        if self._queue and (self.close_code is None or self._drain):
            chunks += [i if isinstance(i, bytes) else events_bytes(*i) for i in self._queue]
            self._queue.clear()
        self._bytes = 0
        if not chunks and self._close_frame is not None:
            chunks.append(self._close_frame)
            self._close_frame = None
        return b"".join(chunks)

    # -- the flusher -----------------------------------------------------------------
    def _flush(self) -> None:
        try:
            while True:
                with self._out:
                    data = self._take_locked()
                    if not data:
                        self._queue = None  # back to idle: no buffer held
                        self._flusher = None
                        return
                self._sock.sendall(data)
        except OSError:  # the peer is gone, or the socket was cut
            with self._out:
                self._close_locked(CLOSE_NORMAL, "", sendable=False)
                self._queue = None
                self._partial = None
                self._close_frame = None
                self._flusher = None

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
