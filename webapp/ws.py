"""`/ws`: the handshake (flask-sock, permessage-deflate declined), then one greenlet per
connection reads the client's frames (wsproto) and hands subscriptions to the hub.

Frames go out through the `Client` (clients.py): written straight to the socket by
whoever sends them, queued only while the socket is full.
"""

from __future__ import annotations

import json
import logging
import re
import socket
from typing import Any

from flask import g, request
from flask_sock import Sock
from wsproto.connection import Connection
from wsproto.events import BytesMessage, CloseConnection, Ping, Pong, TextMessage
from wsproto.utilities import RemoteProtocolError

from webapp import strict_json, wsframes
from webapp.auth.store import AccountStore
from webapp.clients import CLOSE_NORMAL, CLOSE_UNAUTHORIZED, Client
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
MAX_MESSAGE_BYTES = 1 << 20  # a client's message, over its frames
RECEIVE_BYTES = 4096
CLOSE_TOO_BIG = 1009
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
    if client.closed:
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


class _NoReader:
    """simple-websocket starts a reader thread per connection; here the connection's own
    greenlet reads (`_read_loop`), so that thread is never started."""

    name = "unused"

    def __init__(self, target: Any = None) -> None:
        pass

    def start(self) -> None:
        pass


SERVER_OPTIONS = {"thread_class": _NoReader, "ping_interval": None}


def decline_deflate() -> None:
    """Before the handshake: permessage-deflate is declined (browsers always offer it).
    Compressed per client it costs a zlib context per socket and a compression per frame
    and client; uncompressed, one frame's bytes serve every client (docs/api.md)."""
    if request.path == "/ws":
        request.environ.pop("HTTP_SEC_WEBSOCKET_EXTENSIONS", None)


@sock.route("/ws")
def websocket(ws: Any) -> None:
    svc = services()
    hub = svc.hub
    # Authenticated at the handshake (cookie or bearer header), or later by the auth op.
    client = Client(svc.settings.client_queue_bytes, g.get("principal"), ws.sock)
    hub.register(client)
    conn = ws.ws.connection  # the frame protocol; the handshake's HTTP parser can go
    ws.ws = None
    try:
        _read_loop(ws.sock, conn, hub, client)
    finally:
        hub.unregister(client)
        client.close(CLOSE_NORMAL)
        if not client.finish(ABORT_AFTER):
            # Still stuck writing to a peer that does not read: cut the socket
            # (the 4001 close frame already waits behind the unread data).
            client.abort()
            client.finish(5)
        ws.connected = False  # closed here: flask-sock sends nothing more


def _read_loop(sock_: socket.socket, conn: Connection, hub: Hub, client: Client) -> None:
    """Read the client's frames until it closes, goes away or is closed."""
    parts: list[str | bytes] = []
    size = 0
    while not client.closed:
        try:
            data = sock_.recv(RECEIVE_BYTES)
        except OSError:
            return
        if not data:
            return  # the peer went away, or `client.close` shut our reading side
        try:
            conn.receive_data(data)
            for event in conn.events():
                if isinstance(event, TextMessage | BytesMessage):
                    data_ = event.data
                    parts.append(data_ if isinstance(data_, str) else bytes(data_))
                    size += len(event.data)
                    if size > MAX_MESSAGE_BYTES:
                        client.close(CLOSE_TOO_BIG, "message too big")
                        return
                    if not event.message_finished:
                        continue
                    text = _joined(parts)
                    parts, size = [], 0
                    try:
                        handle_frame(hub, client, text)
                    except FrameError as exc:
                        client.put(_error(exc.code, exc.message))
                elif isinstance(event, Ping):
                    client.put_bytes(wsframes.pong(bytes(event.payload)))
                elif isinstance(event, Pong):
                    client.awaiting_pong = False
                elif isinstance(event, CloseConnection):
                    client.close(event.code if event.code != 1005 else CLOSE_NORMAL)
                    return
        except RemoteProtocolError as exc:
            hint = exc.event_hint
            client.close(hint.code if isinstance(hint, CloseConnection) else 1002, "bad frame")
            return


def _joined(parts: list[str | bytes]) -> str | bytes:
    if len(parts) == 1:
        return parts[0]
    if isinstance(parts[0], str):
        return "".join(str(p) for p in parts)
    return b"".join(p if isinstance(p, bytes) else p.encode() for p in parts)
