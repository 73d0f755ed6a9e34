"""A browser's view of one job: live events over /ws, `reset` answered by a reload over REST.

`JobView` keeps the events by seq and checks the contract as frames arrive:
within one subscription from `since`, events come as since+1, since+2, ...
each exactly once. A jump counts as a gap, a seq again as a duplicate. A
`reset` is handled as the page does: reload `GET /api/jobs/<id>/events?since=0`,
keep what is new (by seq), subscribe again from the last seq held.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from websocket import WebSocketException

from tests.support import http
from tests.support.ws import WsClient, is_final


@dataclass
class JobView:
    base_url: str
    job: str
    events: dict[int, dict[str, Any]] = field(default_factory=dict)
    epoch: str = ""
    gaps: int = 0
    dups: int = 0
    resets: int = 0
    reloads: int = 0
    _expect: int = 1  # the seq the current subscription must deliver next

    @property
    def topic(self) -> str:
        return f"job:{self.job}"

    @property
    def last(self) -> int:
        """The end of the run 1..last held without a hole."""
        n = 0
        while n + 1 in self.events:
            n += 1
        return n

    @property
    def done(self) -> bool:
        last = self.last
        return last > 0 and last == max(self.events) and is_final(self.events[last])

    def subscribe_frame(self) -> dict[str, Any]:
        # From the highest seq held, as the page does: after a reload that could not be
        # complete (Redis lost events), the hole stays a hole instead of a reset loop.
        since = max(self.events, default=0)
        self._expect = since + 1
        frame: dict[str, Any] = {"op": "subscribe", "topic": self.topic, "since": since}
        if self.epoch and since:
            frame["epoch"] = self.epoch
        return frame

    def subscribe(self, ws: WsClient) -> None:
        ws.send(self.subscribe_frame())

    def on_frame(self, frame: dict[str, Any], ws: WsClient) -> None:
        """Take one frame from the server (others' topics are ignored)."""
        if frame.get("topic") != self.topic:
            return
        kind = frame.get("type")
        if kind == "subscribed":
            self.epoch = str(frame.get("epoch") or self.epoch)
        elif kind == "events":
            for event in frame["events"]:
                seq = int(event["seq"])
                if seq < self._expect:
                    self.dups += 1
                    continue
                if seq > self._expect:
                    self.gaps += 1
                self._expect = seq + 1
                self.events.setdefault(seq, event)
        elif kind == "reset":
            self.resets += 1
            self.reload()
            self.subscribe(ws)

    def reload(self, timeout: float = 10.0) -> None:
        """The page's reload after `reset`: every event over REST, merged by seq."""
        r = http.get(
            f"{self.base_url}/api/jobs/{self.job}/events", params={"since": 0}, timeout=timeout
        )
        r.raise_for_status()
        body = r.json()
        self.reloads += 1
        self.epoch = str(body.get("epoch") or "")
        for event in body["events"]:
            self.events.setdefault(int(event["seq"]), event)

    def follow(self, ws: WsClient, timeout: float = 60.0) -> JobView:
        """Subscribe and take frames until the job's history is complete and final."""
        self.subscribe(ws)
        return self.run(ws, timeout=timeout)

    def run(
        self, ws: WsClient, until: Callable[[JobView], bool] | None = None, timeout: float = 60.0
    ) -> JobView:
        """Take frames until `until(self)` (default: complete and final), bounded by `timeout`."""
        until = until or (lambda view: view.done)
        deadline = time.monotonic() + timeout
        while not until(self):
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(
                    f"job {self.job}: still waiting after {timeout}s "
                    f"(last {self.last}, max {max(self.events, default=0)})"
                )
            self.on_frame(ws.recv(timeout=left), ws)
        return self

    def seqs(self) -> list[int]:
        return sorted(self.events)


@dataclass
class Follower:
    """One client following several jobs over one WebSocket, as the page and the CLI do:
    when its connection drops it reconnects, to the next of `urls` (the web servers it may
    use), and subscribes every unfinished job again from the highest seq it holds.

    `received` counts every event delivered to it (duplicates included); its views count
    gaps and duplicates; `lag` holds, per event, how long after its `ts` it arrived."""

    urls: list[str]
    views: dict[str, JobView] = field(default_factory=dict)
    received: int = 0
    reconnects: int = 0
    lag: list[float] = field(default_factory=list)
    _at: int = 0

    @property
    def url(self) -> str:
        return self.urls[self._at]

    def watch(self, jobs: list[str]) -> Follower:
        self.views.update({j: JobView(self.url, j) for j in jobs if j not in self.views})
        return self

    def run(self, timeout: float = 60.0) -> Follower:
        """Follow every job until each is complete and final, bounded by `timeout`."""
        deadline = time.monotonic() + timeout
        ws = self._connect()
        try:
            while not all(v.done for v in self.views.values()):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{self.url}: {self.summary()}")
                try:
                    frame = ws.recv(timeout=left)
                except (WebSocketException, OSError):  # the server went away: fail over
                    ws.close()
                    self._at = min(self._at + 1, len(self.urls) - 1)
                    self.reconnects += 1
                    ws = self._connect()
                    continue
                if frame.get("type") == "events":
                    now = time.time()
                    self.received += len(frame["events"])
                    self.lag.extend(now - float(e["ts"]) for e in frame["events"])
                view = self.views.get(str(frame.get("topic", "")).removeprefix("job:"))
                if view is not None:
                    view.on_frame(frame, ws)
        finally:
            ws.close()
        return self

    def _connect(self) -> WsClient:
        ws = WsClient(self.url)
        for view in self.views.values():
            view.base_url = self.url  # a `reset` reloads from the server it talks to
            if not view.done:
                view.subscribe(ws)
        return ws

    def summary(self) -> dict[str, int]:
        views = self.views.values()
        return {
            "jobs": len(self.views),
            "events": sum(len(v.events) for v in views),
            "received": self.received,
            "duplicates": sum(v.dups for v in views),
            "gaps": sum(v.gaps for v in views),
            "resets": sum(v.resets for v in views),
            "reconnects": self.reconnects,
        }
