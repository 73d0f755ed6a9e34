"""One client's subscription to one job: buffering or live, and every move between them.

A subscription starts *buffering*: live events are held while a replay (the
job's log, or SQL) is read from `last`. `finish_replay` sends the replay, then
what was held, in seq order, and the subscription is *live*: an event is sent
if it is exactly `last + 1`, dropped if it was already sent. A jump (a lost
pub/sub message, a reconnect) holds the event and asks the caller for another
replay. So the client is sent every seq exactly once, in order, whatever the
order replays and live events arrive in.

Frames go to the sink under the subscription's lock: sent outside it, a live
event handed over by the listener could overtake the replay another thread is
sending. The transitions return whether the caller must start a replay; the
hub only routes (it never reads or writes a subscription's fields).
"""

from __future__ import annotations

import threading
from typing import Protocol

from webapp.replay import Item


class Sink(Protocol):
    """Where a subscription's frames go: the client's outgoing queue."""

    def put(self, frame: str) -> bool: ...

    def put_events(self, topic: str, raws: list[str], frame: bytes | None = None) -> bool: ...


class JobSubscription:
    def __init__(self, topic: str, since: int, sink: Sink) -> None:
        self.topic = topic
        self._sink = sink
        self._lock = threading.Lock()
        self._last = since  # the highest seq the client has been sent
        self._held: list[Item] | None = []  # None: live; else buffering, live events held
        self._closed = False

    @property
    def last(self) -> int:
        return self._last

    @property
    def live(self) -> bool:
        return self._held is None and not self._closed

    @property
    def closed(self) -> bool:
        return self._closed

    # -- transitions --------------------------------------------------------------
    def offer_live(self, seq: int, raw: str, frame: bytes | None = None) -> bool:
        """A live event (`frame`: its frame on this topic, built once for every client);
        True if it shows a gap (start a replay)."""
        return self.offer_run([(seq, raw)], frame)

    def offer_run(self, items: list[Item], frame: bytes | None = None) -> bool:
        """Live events in the order pub/sub brought them, as if offered one by one, but
        what continues `last` leaves as one frame (`frame`, built once for every client,
        when that is all of them); True if they show a gap (start a replay)."""
        with self._lock:
            if self._closed:
                return False
            if self._held is not None:
                self._held.extend(items)
                return False
            out: list[str] = []
            gap = False
            for i, (seq, raw) in enumerate(items):
                if seq <= self._last:
                    continue  # already sent
                if seq != self._last + 1:
                    self._held = list(items[i:])  # a gap: hold from here until a replay
                    gap = True
                    break
                out.append(raw)
                self._last = seq
            if out:
                whole = frame if len(out) == len(items) else None
                self._sink.put_events(self.topic, out, whole)
            return gap

    def begin_replay(self) -> int | None:
        """Start holding live events; the seq to replay after (None: unsubscribed)."""
        with self._lock:
            if self._closed:
                return None
            if self._held is None:
                self._held = []
            return self._last

    def finish_replay(self, items: list[Item], announce: str | None = None) -> bool:
        """Send `announce` (a frame), the replay's items, then what was held, and go
        live; True if a gap is still there (start another replay)."""
        with self._lock:
            if self._closed:
                return False
            if announce is not None:
                self._sink.put(announce)
            held = self._held or []
            self._held = None
            merged = sorted([*items, *held], key=_seq) if held else items
            out, rest = self._continuing(merged)
            if out:
                self._sink.put_events(self.topic, out)
            if rest:
                self._held = rest  # still a gap: hold what is past it until the next replay
                return True
            return False

    def close(self) -> bool:
        """Unsubscribed: nothing more is sent. False if it already was."""
        with self._lock:
            was_open = not self._closed
            self._closed = True
            self._held = None
            return was_open

    # -- helpers (with the lock held) -----------------------------------------------
    def _continuing(self, items: list[Item]) -> tuple[list[str], list[Item]]:
        """The envelopes of `items` (in seq order) that continue `last`, advancing it; and
        the items from the first gap on."""
        out: list[str] = []
        for i, (seq, raw) in enumerate(items):
            if seq <= self._last:
                continue  # already sent: never twice
            if seq != self._last + 1:
                return out, list(items[i:])
            out.append(raw)
            self._last = seq
        return out, []


def _seq(item: Item) -> int:
    return item[0]
