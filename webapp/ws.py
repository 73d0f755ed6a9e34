"""`/ws`: parse client frames, hand subscriptions to the hub, send queued frames."""

from __future__ import annotations

import contextlib
import json
import logging
import re
import socket
import threading
from typing import Any

from flask import g
from flask_sock import Sock
from simple_websocket import ConnectionClosed

from webapp import strict_json
from webapp.auth.store import AccountStore
from webapp.clients import CLOSE_UNAUTHORIZED, Client
from webapp.coalesce import JOBS_LATEST_TOPIC
from webapp.errors import ApiError
from webapp.hub import JOB_TOPIC_PREFIX, JOBS_TOPIC, WORKERS_TOPIC, Hub
from webapp.params import MAX_INT, json_int
from webapp.services import services

log = logging.getLogger("agentdeck.ws")
sock = Sock()

MAX_FRAME_CHARS = 16_384
MAX_SUBSCRIPTIONS = 1_000
ABORT_AFTER = 10.0  # seconds a closing sender may stay blocked on an unread socket
JOB_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


class FrameError(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _error(code: str, message: str) -> str:
    return json.dumps({"type": "error", "code": code, "message": message})


def parse_frame(text: Any) -> dict[str, Any]:
    if not isinstance(text, str):
        raise FrameError("bad_frame", "frames must be JSON text, not binary")
    if len(text) > MAX_FRAME_CHARS:
        raise FrameError("frame_too_large", f"frames are limited to {MAX_FRAME_CHARS} characters")
    try:
        frame = strict_json.loads(text)
    except strict_json.JsonRefused as exc:
        raise FrameError("bad_json", f"the frame is not valid JSON: {exc}") from None
    if strict_json.may_hold_surrogates(text) and strict_json.unencodable_path(frame) is not None:
        raise FrameError("bad_frame", "the frame holds text that is not valid Unicode")
    if not isinstance(frame, dict):
        raise FrameError("bad_frame", "a frame must be a JSON object")
    if not isinstance(frame.get("op"), str):
        raise FrameError("bad_frame", 'a frame needs an "op" string')
    return frame


def _topic(frame: dict[str, Any]) -> str:
    topic = frame.get("topic")
    if not isinstance(topic, str):
        raise FrameError("bad_topic", 'a "topic" string is required')
    if topic in (JOBS_TOPIC, JOBS_LATEST_TOPIC, WORKERS_TOPIC):
        return topic
    if topic.startswith(JOB_TOPIC_PREFIX) and JOB_ID.match(topic[len(JOB_TOPIC_PREFIX) :]):
        return topic
    known = "jobs, jobs:latest, workers or job:<id>"
    raise FrameError("bad_topic", f"unknown topic {topic[:80]!r}: use {known}")


def handle_frame(hub: Hub, client: Client, text: Any) -> None:
    if client.closing is not None:
        return  # being closed: the rest is not read
    frame = parse_frame(text)
    op = frame["op"]
    if op == "ping":
        client.put('{"type":"pong"}')
    elif op == "auth":
        _authenticate(client, frame)
    elif client.principal is None:
        message = 'authenticate first: {"op": "auth", "token": ...}'
        client.put_last(_error("unauthorized", message), CLOSE_UNAUTHORIZED, "not authenticated")
    elif op == "subscribe":
        topic = _topic(frame)
        principal = client.principal
        if len(client.subs) + len(client.topics) >= MAX_SUBSCRIPTIONS:
            raise FrameError("too_many_subscriptions", f"at most {MAX_SUBSCRIPTIONS} topics")
        if topic.startswith(JOB_TOPIC_PREFIX):
            try:
                since = json_int("since", frame.get("since", 0), 0, MAX_INT)
            except ApiError as exc:
                raise FrameError("bad_since", exc.message) from None
            epoch = frame.get("epoch")
            if epoch is not None and not isinstance(epoch, str):
                raise FrameError("bad_epoch", '"epoch" must be the string the server gave')
            job = topic[len(JOB_TOPIC_PREFIX) :]
            if not principal.sees_all and not hub.owners.owned_by(job, principal.user_id):
                # another user's job is as missing as one that does not exist
                raise FrameError("not_found", f"no job {job!r}")
            hub.subscribe_job(client, job, since, epoch or None)
        else:
            if topic == WORKERS_TOPIC and not principal.sees_all:
                raise FrameError("forbidden", "worker presence is for those who see all jobs")
            hub.subscribe_topic(client, topic)
    elif op == "unsubscribe":
        hub.unsubscribe(client, _topic(frame))
        client.put(json.dumps({"type": "unsubscribed", "topic": frame["topic"]}))
    else:
        raise FrameError("unknown_op", f"unknown op {op[:40]!r}")


def _authenticate(client: Client, frame: dict[str, Any]) -> None:
    token = frame.get("token")
    if not isinstance(token, str):
        raise FrameError("bad_token", 'auth needs a "token" string')
    if client.principal is None:
        principal = accounts().authenticate(token)
        if principal is None:
            error = _error("unauthorized", "the token is not valid")
            client.put_last(error, CLOSE_UNAUTHORIZED, "bad token")
            return
        client.principal = principal
    who = client.principal
    client.put(json.dumps({"type": "authenticated", "user": who.name, "role": who.role.value}))


def accounts() -> AccountStore:
    store = services().accounts
    assert store is not None
    return store


def _send_loop(ws: Any, client: Client) -> None:
    try:
        while not client.closed:
            for frame in client.take(timeout=1.0):
                ws.send(frame)
            if client.closing is not None:
                client.close(*client.closing)
        ws.close(reason=client.close_code or 1000, message=client.close_reason)
    except (ConnectionClosed, OSError):
        pass  # the client went away
    except Exception:
        log.exception("websocket sender failed")
    finally:
        client.close(1000)


class _SendAll:
    """simple-websocket writes frames with `socket.send`, which may write only part of
    a large frame; this makes every write whole."""

    def __init__(self, sock: Any) -> None:
        self._sock = sock

    def send(self, data: bytes) -> int:
        self._sock.sendall(data)
        return len(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


@sock.route("/ws")
def websocket(ws: Any) -> None:
    ws.sock = _SendAll(ws.sock)
    svc = services()
    hub = svc.hub
    # Authenticated at the handshake (cookie or bearer header), or later by the auth op.
    client = Client(svc.settings.client_queue_bytes, g.get("principal"))
    hub.register(client)
    sender = threading.Thread(target=_send_loop, args=(ws, client), daemon=True)
    sender.start()
    try:
        while not client.closed:
            text = ws.receive(timeout=1.0)
            if text is None:
                continue
            try:
                handle_frame(hub, client, text)
            except FrameError as exc:
                client.put(_error(exc.code, exc.message))
    except ConnectionClosed:
        pass
    finally:
        hub.unregister(client)
        client.close(1000)
        sender.join(timeout=ABORT_AFTER)
        if sender.is_alive():
            # Still stuck writing to a peer that does not read: cut the socket
            # (the 4001 close frame already waits behind the unread data).
            _abort(ws)
            sender.join(timeout=5)


def _abort(ws: Any) -> None:
    with contextlib.suppress(OSError):
        ws.sock.shutdown(socket.SHUT_RDWR)
