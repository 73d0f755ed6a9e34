"""Helpers of the monitoring tests: an HTTP client with the admin token, bounded waits."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import requests

from launcher.net import wait_until
from tests.support.ws import WsClient, is_final


class Api:
    """requests against the web, with `Authorization: Bearer <admin token>` unless
    `admin=False` (an anonymous client)."""

    def __init__(self, base_url: str, token: str) -> None:
        self.base = base_url.rstrip("/")
        self.token = token
        self.session = requests.Session()
        self.session.trust_env = False  # never through a proxy

    def request(
        self, method: str, path: str, *, admin: bool = True, **kw: Any
    ) -> requests.Response:
        headers = dict(kw.pop("headers", {}) or {})
        if admin:
            headers["Authorization"] = f"Bearer {self.token}"
        return self.session.request(method, self.base + path, headers=headers, timeout=20, **kw)

    def get(self, path: str, **kw: Any) -> Any:
        r = self.request("GET", path, **kw)
        assert r.status_code == 200, f"GET {path}: {r.status_code} {r.text[:300]}"
        return r.json()

    def post(self, path: str, *, expect: int = 200, **kw: Any) -> Any:
        r = self.request("POST", path, admin=kw.pop("admin", True), **kw)
        assert r.status_code == expect, f"POST {path}: {r.status_code} {r.text[:300]}"
        return r.json()


def eventually(fetch: Callable[[], Any], check: Callable[[Any], bool], timeout: float) -> Any:
    """Poll `fetch()` until `check` holds (bounded); returns the last value or fails."""
    box: dict[str, Any] = {}

    def ok() -> bool:
        box["v"] = fetch()
        return bool(check(box["v"]))

    assert wait_until(ok, timeout, interval=0.1), f"not within {timeout}s; last: {box.get('v')!r}"
    return box["v"]


def wait_for_worker(api: Api, host: str, *, online: bool, timeout: float) -> dict[str, Any]:
    def find() -> dict[str, Any] | None:
        return next(
            (w for w in api.get("/api/monitor/workers")["workers"] if w["hostname"] == host), None
        )

    return eventually(find, lambda w: w is not None and w["online"] == online, timeout)


def wait_final(api: Api, task_id: str, timeout: float = 30.0) -> dict[str, Any]:
    """Wait for the task's final event over the WebSocket, then for its SQL row to say so."""
    ws = WsClient(api.base)
    try:
        ws.subscribe_job(task_id, since=0)
        events = ws.events_until(task_id, is_final, timeout=timeout)
    finally:
        ws.close()
    final = events[-1]["state"]
    return eventually(
        lambda: api.request("GET", f"/api/task/info/{task_id}").json(),
        lambda t: t.get("state") == final,
        timeout=10,
    )


def wait_state(api: Api, task_id: str, state: str, timeout: float = 30.0) -> None:
    """Wait for the task to reach `state` (an event over the WebSocket)."""
    ws = WsClient(api.base)
    try:
        ws.subscribe_job(task_id, since=0)
        ws.events_until(task_id, lambda e: e["state"] == state, timeout=timeout)
    finally:
        ws.close()


def wait_for_heartbeat(api: Api, host: str, timeout: float = 10.0) -> dict[str, Any]:
    """The worker's next heartbeat after now (its counts then include what ran so far)."""
    first = wait_for_worker(api, host, online=True, timeout=timeout)["last_heartbeat"]

    def find() -> dict[str, Any]:
        workers = api.get("/api/monitor/workers")["workers"]
        return next(w for w in workers if w["hostname"] == host)

    return eventually(find, lambda w: w["last_heartbeat"] > first, timeout)
