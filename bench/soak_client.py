"""One soak client: a browser tab that keeps losing its connection.

It follows a few jobs. Each cycle it connects to /ws, subscribes to every job
it has not seen to the end (from the last seq it holds, with the epoch it was
given), reads for a random while, then drops the connection, and goes again.
A `reset` is answered as the page does (REST reload, subscribe again); a web
process or Redis that is away is waited out with backoff and jitter.
"""

from __future__ import annotations

import random
import threading
import time

import requests
import websocket

from tests.support.follow import JobView
from tests.support.ws import WsClient

TROUBLE = (websocket.WebSocketException, OSError, requests.RequestException, ValueError)


class SoakClient(threading.Thread):
    def __init__(
        self,
        index: int,
        base_url: str,
        jobs: list[str],
        hold: tuple[float, float],
        deadline: float,
        seed: int,
    ) -> None:
        super().__init__(name=f"soak-client-{index}", daemon=True)
        self.base_url = base_url
        self.views = {job: JobView(base_url, job) for job in jobs}
        self.hold = hold
        self.deadline = deadline
        self.rng = random.Random(seed)
        self.cycles = 0  # connections made and dropped
        self.failures = 0  # connects or reloads that failed (web or Redis away)
        self.error = ""

    @property
    def done(self) -> bool:
        return all(view.done for view in self.views.values())

    def run(self) -> None:
        backoff = 0.05
        try:
            while not self.done and time.monotonic() < self.deadline:
                if self._cycle():
                    backoff = 0.05
                else:
                    self.failures += 1
                    time.sleep(backoff * (0.5 + self.rng.random()))  # jitter
                    backoff = min(backoff * 2, 1.0)
        except Exception as exc:  # a bug in the client: report it, do not hide it
            self.error = repr(exc)

    def _cycle(self) -> bool:
        """One connection: subscribe, read for a random while, drop it. False on trouble."""
        try:
            ws = WsClient(self.base_url, timeout=5)
        except TROUBLE:
            return False
        self.cycles += 1
        by_topic = {view.topic: view for view in self.views.values()}
        end = time.monotonic() + self.rng.uniform(*self.hold)
        try:
            for view in self.views.values():
                if not view.done:
                    view.subscribe(ws)
            while not self.done and (left := end - time.monotonic()) > 0:
                try:
                    frame = ws.recv(timeout=left)
                except websocket.WebSocketTimeoutException:
                    break  # the while is up: drop the connection mid-stream
                ws.frames.clear()
                target = by_topic.get(str(frame.get("topic")))
                if target is not None:
                    target.on_frame(frame, ws)
            return True
        except TROUBLE:
            return False
        finally:
            ws.conn.shutdown()  # gone without a goodbye, like a tab losing its network
