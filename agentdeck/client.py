"""A Python client of Agentdeck: the REST API and the `/ws` WebSocket, nothing else.

```python
from agentdeck.client import Client

with Client("http://127.0.0.1:8000", token) as deck:
    job = deck.submit("echo", {"text": "hello"})
    for event in deck.events(job["id"]):        # live, resumed by seq across reconnects
        if event["type"] == "output":
            print(event["data"]["text"], end="")
    print(deck.wait(job["id"], timeout=60)["state"])
```

Every error the server answers with (`{"error": {"code", "message", "field"?}}`)
is raised as an `ApiError` (a subclass per common status: `Unauthorized`,
`Forbidden`, `NotFound`, `Conflict`, `InvalidInput`); a server that cannot be
reached is `ConnectionFailed`. The contract is docs/api.md; this module is
described in docs/cli.md.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import random
import re
import time
from collections.abc import Iterable, Iterator, Mapping
from types import TracebackType
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import requests
import websocket

DEFAULT_URL = "http://127.0.0.1:8000"
FINAL_STATES = frozenset({"SUCCESS", "FAILURE", "REVOKED"})
CLOSE_UNAUTHORIZED = 4401

Event = dict[str, Any]
Job = dict[str, Any]


# -- errors ------------------------------------------------------------------------------
class AgentdeckError(Exception):
    """Anything this client raises on purpose."""


class ConnectionFailed(AgentdeckError):
    """The server could not be reached (or stopped answering)."""


class WaitTimeout(AgentdeckError, TimeoutError):
    """`wait()` or a stream with a `timeout` ran out of time."""


class ApiError(AgentdeckError):
    """An error answer of the API: `status`, `code`, `message`, `field` (or None), and
    `error`, the whole `{"code", "message", ...}` object the server sent."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: str | None = None,
        error: Mapping[str, Any] | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.error: dict[str, Any] = dict(error or {"code": code, "message": message})
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f", field {self.field}" if self.field else ""
        return f"{self.message} ({self.status} {self.code}{where})"


class Unauthorized(ApiError):
    """401, or a WebSocket closed with 4401: no token, or a wrong, expired or revoked one."""


class Forbidden(ApiError):
    """403: the token's role does not allow it."""


class NotFound(ApiError):
    """404: no such agent or job (or a job of another user)."""


class Conflict(ApiError):
    """409: the job is not in a state that allows it (already finished, not waiting...)."""


class InvalidInput(ApiError):
    """422: the input fails the agent's schema (`field` names the first bad field)."""


_BY_STATUS: dict[int, type[ApiError]] = {
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    422: InvalidInput,
}
_WS_STATUS = {"unauthorized": 401, "forbidden": 403, "not_found": 404}


def api_error(status: int, error: Mapping[str, Any]) -> ApiError:
    """The typed exception for an error answer (`error` is the body's `"error"` object)."""
    cls = _BY_STATUS.get(status, ApiError)
    field = error.get("field")
    return cls(
        status,
        str(error.get("code") or "error"),
        str(error.get("message") or f"HTTP {status}"),
        str(field) if field is not None else None,
        error,
    )


def is_final(event_or_job: Mapping[str, Any]) -> bool:
    """True for an event (or job) whose state is SUCCESS, FAILURE or REVOKED."""
    return event_or_job.get("state") in FINAL_STATES


class JobList(list[Job]):
    """One page of `GET /api/jobs`: a list of jobs, with `next_cursor` and `counts`."""

    def __init__(
        self, jobs: Iterable[Job], next_cursor: str | None, counts: Mapping[str, int]
    ) -> None:
        super().__init__(jobs)
        self.next_cursor = next_cursor
        self.counts = dict(counts)


# -- the client --------------------------------------------------------------------------
class Client:
    """A connection to one Agentdeck server.

    `url` defaults to `AGENTDECK_URL` (else http://127.0.0.1:8000) and `token` to
    `AGENTDECK_TOKEN`; the token is sent as `Authorization: Bearer <token>` over
    HTTP and at the WebSocket handshake. `timeout` bounds each HTTP request.
    """

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        timeout: float = 30.0,
        session: requests.Session | None = None,
    ) -> None:
        self.url = (url or os.environ.get("AGENTDECK_URL") or DEFAULT_URL).rstrip("/")
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"not an http(s) URL: {self.url!r}")
        self.token = token if token is not None else os.environ.get("AGENTDECK_TOKEN", "")
        self.timeout = timeout
        self.session = session or requests.Session()
        if self.token:
            self.session.headers["Authorization"] = f"Bearer {self.token}"
        ws_scheme = "wss" if parts.scheme == "https" else "ws"
        self.ws_url = urlunsplit((ws_scheme, parts.netloc, parts.path.rstrip("/") + "/ws", "", ""))

    # context manager
    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self.session.close()

    # HTTP
    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: Mapping[str, Any] | None = None,
    ) -> Any:
        """One API call: the decoded JSON answer, or the typed `ApiError` it answered with."""
        kwargs: dict[str, Any] = {"timeout": self.timeout}
        if json_body is not None:
            kwargs["json"] = json_body
        if params:
            kwargs["params"] = {k: v for k, v in params.items() if v is not None}
        try:
            response = self.session.request(method, self.url + path, **kwargs)
        except requests.RequestException as exc:
            raise ConnectionFailed(f"cannot reach Agentdeck at {self.url}: {_reason(exc)}") from exc
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code >= 400:
            error = body.get("error") if isinstance(body, dict) else None
            if not isinstance(error, dict):
                text = response.text.strip()[:200] or response.reason
                error = {"code": "http_error", "message": text}
            raise api_error(response.status_code, error)
        if body is None:
            raise ConnectionFailed(f"{self.url}{path} did not answer JSON (is it Agentdeck?)")
        return body

    def me(self) -> dict[str, Any]:
        """Who the token stands for: `{"id", "name", "role", "all_jobs", "via"}`."""
        return dict(self.request("GET", "/api/me"))

    def agents(self) -> list[dict[str, Any]]:
        """Registered agents: `name`, `description`, `input_schema`, `on_lost`."""
        return list(self.request("GET", "/api/agents")["agents"])

    def submit(
        self,
        agent: str,
        input: Mapping[str, Any] | None = None,
        queue: str | None = None,
        *,
        priority: int | None = None,
        idempotency_key: str | None = None,
    ) -> Job:
        """Submit a job; returns it (state PENDING). `InvalidInput` names a bad field."""
        body: dict[str, Any] = {"agent": agent, "input": dict(input or {})}
        for key, value in (
            ("queue", queue),
            ("priority", priority),
            ("idempotency_key", idempotency_key),
        ):
            if value is not None:
                body[key] = value
        return dict(self.request("POST", "/api/jobs", json_body=body))

    def submit_many(self, submissions: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Submit many jobs in one request (`POST /api/jobs/bulk`): for each submission
        (`{"agent", "input", "queue"?, ...}`), in order, `{"status", "id", "state",
        "created"}` or `{"status", "error"}`. A refused item raises nothing."""
        body = {"jobs": [dict(sub) for sub in submissions]}
        return list(self.request("POST", "/api/jobs/bulk", json_body=body)["results"])

    def get(self, job_id: str) -> Job:
        """One job: state (live), input, result or error, timestamps, worker, retries."""
        return dict(self.request("GET", f"/api/jobs/{_id(job_id)}"))

    def jobs(
        self,
        state: str | Iterable[str] | None = None,
        agent: str | None = None,
        q: str | None = None,
        limit: int | None = None,
        *,
        kind: str | None = None,
        cursor: str | None = None,
    ) -> JobList:
        """Jobs, newest first (one page; pass `.next_cursor` back as `cursor` for more)."""
        if state is not None and not isinstance(state, str):
            state = ",".join(state)
        params = {"state": state, "agent": agent, "q": q, "limit": limit, "kind": kind}
        params["cursor"] = cursor
        body = self.request("GET", "/api/jobs", params=params)
        return JobList(body["jobs"], body.get("next_cursor"), body.get("counts") or {})

    def history(self, job_id: str, since: int = 0) -> dict[str, Any]:
        """`GET /api/jobs/<id>/events?since=N`: `{"job", "head", "complete", "epoch", "events"}`."""
        return dict(self.request("GET", f"/api/jobs/{_id(job_id)}/events", params={"since": since}))

    def cancel(self, job_id: str) -> Job:
        """Cancel a job (cooperative, then forced). `Conflict` if it already ended."""
        return dict(self.request("POST", f"/api/jobs/{_id(job_id)}/cancel"))

    def retry(self, job_id: str, from_failure: bool = False) -> Job:
        """A new job with the same agent and input; `from_failure=True` resumes a durable
        run from where it failed instead of from the start."""
        body = {"from": "failure"} if from_failure else None
        return dict(self.request("POST", f"/api/jobs/{_id(job_id)}/retry", json_body=body))

    def answer(self, job_id: str, value: Any) -> Job:
        """Answer the question a WAITING job asked (`ctx.ask`)."""
        return dict(
            self.request("POST", f"/api/jobs/{_id(job_id)}/input", json_body={"answer": value})
        )

    # WebSocket
    def events(self, job_id: str, since: int = 0, *, timeout: float | None = None) -> EventStream:
        """The job's events with seq > `since`, live, up to and including its final one.

        An iterator over event envelopes (dicts) that follows the job over the
        WebSocket. When the socket drops it reconnects and subscribes again from the
        last seq it yielded, so every event comes exactly once and in order; a `reset`
        is answered by reloading the missing events over REST. `timeout` (seconds)
        bounds the whole stream (`WaitTimeout`); without it, it waits as long as the
        job runs.
        """
        return EventStream(self, job_id, since, timeout=timeout)

    def wait(self, job_id: str, timeout: float | None = None) -> Job:
        """Block until the job reaches a final state; returns the job. `WaitTimeout`."""
        deadline = None if timeout is None else time.monotonic() + timeout
        job = self.get(job_id)
        if not is_final(job):
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            with self.events(job_id, since=int(job.get("last_seq") or 0), timeout=left) as stream:
                for _ in stream:
                    pass
            job = self.get(job_id)
        # `state` is live; the rest of the row trails the stream by milliseconds.
        while job.get("finished_at") is None:
            if deadline is not None and time.monotonic() >= deadline:
                break
            time.sleep(0.05)
            job = self.get(job_id)
        return job

    def connect_ws(self) -> websocket.WebSocket:
        """A WebSocket to `/ws`, authenticated at the handshake with the token."""
        header = [f"Authorization: Bearer {self.token}"] if self.token else []
        try:
            return websocket.create_connection(self.ws_url, timeout=self.timeout, header=header)
        except websocket.WebSocketBadStatusException as exc:
            status = int(exc.status_code)
            error: Mapping[str, Any] = {"code": "http_error", "message": str(exc)}
            try:
                body = json.loads(exc.resp_body or b"")
                if isinstance(body, dict) and isinstance(body.get("error"), dict):
                    error = body["error"]
            except ValueError:
                pass
            raise api_error(status, error) from None
        except (OSError, websocket.WebSocketException) as exc:
            raise ConnectionFailed(f"cannot open {self.ws_url}: {exc}") from exc


def _reason(exc: BaseException) -> str:
    """The innermost cause of a connection failure, in a few words."""
    if isinstance(exc, requests.Timeout):
        return "timed out"
    found = re.search(r"\[Errno -?\d+\] ([^'\")]+)", str(exc))
    return found.group(1).strip() if found else type(exc).__name__


def _id(job_id: str) -> str:
    return quote(str(job_id), safe="")


class EventStream(Iterator[Event]):
    """A job's events, followed live over `/ws` (see `Client.events`).

    `last` is the seq of the last event yielded, `epoch` the server's epoch,
    `connection` the WebSocket in use (None between connections), `reconnects`
    and `resets` count what it survived. `close()` ends it early.
    """

    PING_EVERY = 15.0  # seconds of silence before a ping (keeps proxies from idling us out)
    RECONNECT_FOR = 60.0  # seconds to keep trying to reach the server before giving up

    def __init__(
        self, client: Client, job_id: str, since: int = 0, *, timeout: float | None = None
    ) -> None:
        self.client = client
        self.job = job_id
        self.topic = f"job:{job_id}"
        self.last = int(since)
        self.epoch = ""
        self.connection: websocket.WebSocket | None = None
        self.reconnects = 0
        self.resets = 0
        self.finished = False
        self._connected_once = False
        self._pending: collections.deque[Event] = collections.deque()
        self._deadline = None if timeout is None else time.monotonic() + timeout

    def __iter__(self) -> EventStream:
        return self

    def __next__(self) -> Event:
        while not self._pending:
            if self.finished:
                self.close()
                raise StopIteration
            self._step()
        return self._pending.popleft()

    def __enter__(self) -> EventStream:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        conn, self.connection = self.connection, None
        if conn is not None:
            with contextlib.suppress(OSError, websocket.WebSocketException):
                conn.close(timeout=1)

    # one step: connect, or read and handle one frame
    def _step(self) -> None:
        if self.connection is None:
            self._connect()
            return
        frame = self._recv(self.connection)
        if frame is not None:
            self._handle(frame)

    def _left(self) -> float | None:
        if self._deadline is None:
            return None
        left = self._deadline - time.monotonic()
        if left <= 0:
            self.close()
            raise WaitTimeout(f"job {self.job}: no final event in time (last seq {self.last})")
        return left

    def _connect(self) -> None:
        give_up = time.monotonic() + self.RECONNECT_FOR
        attempt = 0
        while True:
            self._left()
            try:
                conn = self.client.connect_ws()
                break
            except ConnectionFailed:
                if time.monotonic() >= give_up:
                    raise
            attempt += 1
            pause = min(2.0, 0.1 * 2**attempt) * random.uniform(0.5, 1.0)
            left = self._left()
            time.sleep(pause if left is None else min(pause, left))
        if self._connected_once:
            self.reconnects += 1
        self._connected_once = True
        self.connection = conn
        self._subscribe()

    def _subscribe(self) -> None:
        frame: dict[str, Any] = {"op": "subscribe", "topic": self.topic, "since": self.last}
        if self.epoch and self.last:
            frame["epoch"] = self.epoch
        self._send(frame)

    def _send(self, frame: Mapping[str, Any]) -> None:
        if self.connection is None:
            return
        try:
            self.connection.send(json.dumps(frame))
        except (OSError, websocket.WebSocketException):
            self._drop()

    def _drop(self) -> None:
        """The connection is gone: forget it; the next step reconnects."""
        self.close()

    def _recv(self, conn: websocket.WebSocket) -> dict[str, Any] | None:
        left = self._left()
        wait = self.PING_EVERY if left is None else min(self.PING_EVERY, left)
        try:
            conn.settimeout(wait)
            opcode, data = conn.recv_data()
        except websocket.WebSocketTimeoutException:
            self._send({"op": "ping"})
            return None
        except (OSError, websocket.WebSocketException, ValueError):
            self._drop()
            return None
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            code = int.from_bytes(data[:2], "big") if len(data) >= 2 else None
            self._drop()
            if code == CLOSE_UNAUTHORIZED:
                raise Unauthorized(
                    401, "unauthorized", "the server closed the stream: credentials not valid"
                )
            return None
        if opcode != websocket.ABNF.OPCODE_TEXT:
            return None
        try:
            frame = json.loads(data)
        except ValueError:
            return None
        return frame if isinstance(frame, dict) else None

    def _handle(self, frame: dict[str, Any]) -> None:
        kind = frame.get("type")
        if kind == "error":
            code = str(frame.get("code") or "error")
            self.close()
            raise api_error(_WS_STATUS.get(code, 400), frame)
        if frame.get("topic") != self.topic:
            return
        if kind == "subscribed":
            self.epoch = str(frame.get("epoch") or self.epoch)
            head = frame.get("head")
            if isinstance(head, int) and head <= self.last and is_final(self.client.get(self.job)):
                self.finished = True  # asked to start at or past the end of a finished job
        elif kind == "events":
            for event in frame.get("events") or []:
                seq = int(event["seq"])
                if seq <= self.last:
                    continue  # already yielded (a replay overlapping what we had)
                if seq > self.last + 1:
                    self._reload(before=seq)  # a jump: fill it from REST
                self._take(event)
                if self.finished:
                    return
        elif kind == "reset":
            self.resets += 1
            self._reload()
            if not self.finished:
                self._subscribe()

    def _take(self, event: Event) -> None:
        if self.finished or int(event["seq"]) <= self.last:
            return
        self._pending.append(event)
        self.last = int(event["seq"])
        if is_final(event):
            self.finished = True

    def _reload(self, before: int | None = None) -> None:
        """Events after `last` from REST (up to `before`, exclusive), after a reset or a gap."""
        body = self.client.history(self.job, since=self.last)
        if before is None:
            self.epoch = str(body.get("epoch") or "")
        for event in body.get("events") or []:
            if before is not None and int(event["seq"]) >= before:
                break
            self._take(event)
