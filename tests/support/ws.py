"""A small WebSocket test client: send frames, wait for frames, collect job events."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import websocket

from tests.support.http import auth_headers


class WsClient:
    def __init__(self, base_url: str, timeout: float = 10.0, token: str | None = None) -> None:
        """`token`: sent at the handshake as a bearer token (default the admin token; ""
        sends none, for clients that authenticate with the `auth` op or not at all)."""
        url = base_url.replace("http://", "ws://").rstrip("/") + "/ws"
        self.conn = websocket.create_connection(url, timeout=timeout, header=auth_headers(token))
        self.frames: list[dict[str, Any]] = []

    def send(self, frame: dict[str, Any] | str) -> None:
        self.conn.send(frame if isinstance(frame, str) else json.dumps(frame))

    def recv(self, timeout: float = 10.0) -> dict[str, Any]:
        self.conn.settimeout(timeout)
        opcode, data = self.conn.recv_data()
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            code = int.from_bytes(data[:2], "big") if data else None
            raise websocket.WebSocketConnectionClosedException(f"closed by the server: {code}")
        frame = json.loads(data)
        self.frames.append(frame)
        return frame

    def wait_for(
        self, match: Callable[[dict[str, Any]], bool], timeout: float = 10.0
    ) -> dict[str, Any]:
        """The first frame from now on that `match`es (bounded by `timeout`)."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            frame = self.recv(timeout=left)
            if match(frame):
                return frame
        raise TimeoutError("no matching frame")

    def subscribe_job(self, job_id: str, since: int = 0, **extra: Any) -> dict[str, Any]:
        topic = f"job:{job_id}"
        self.send({"op": "subscribe", "topic": topic, "since": since, **extra})
        return self.wait_for(
            lambda f: f.get("topic") == topic and f["type"] in ("subscribed", "reset")
        )

    def events_until(
        self, job_id: str, done: Callable[[dict[str, Any]], bool], timeout: float = 30.0
    ) -> list[dict[str, Any]]:
        """Collect the job's events until one satisfies `done` (that one included)."""
        topic = f"job:{job_id}"
        got: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            frame = self.recv(timeout=left)
            if frame.get("type") == "events" and frame.get("topic") == topic:
                for event in frame["events"]:
                    got.append(event)
                    if done(event):
                        return got
        raise TimeoutError(f"job {job_id}: no final event; got {[e['type'] for e in got]}")

    def close(self) -> None:
        self.conn.close()


def is_final(event: dict[str, Any]) -> bool:
    return event["state"] in ("SUCCESS", "FAILURE", "REVOKED")


def watch_to_end(
    base_url: str, job_id: str, since: int = 0, timeout: float = 60.0
) -> list[dict[str, Any]]:
    """Subscribe to a job from `since` and collect its events up to the final one."""
    ws = WsClient(base_url)
    try:
        ws.subscribe_job(job_id, since=since)
        return ws.events_until(job_id, is_final, timeout=timeout)
    finally:
        ws.close()
