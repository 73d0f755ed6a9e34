"""Fan-out on the real web process: one frame's bytes for every client, permessage-deflate
declined, and a client whose socket is full served in order from its queue."""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import websocket

from tests.support.http import auth_headers
from tests.support.platform import Platform
from tests.support.services import WebService
from workers.envelope import Event
from workers.keys import DEFAULT_PREFIX, Keys

CHANNEL = Keys(DEFAULT_PREFIX).events_channel
EVENT_BYTES = 8_000


def _kernel_buffers() -> int:
    """About what the kernel holds for a connection that is not read: the server's send
    buffer at its largest and the client's receive buffer."""
    try:
        wmem = int(Path("/proc/sys/net/ipv4/tcp_wmem").read_text().split()[2])
        rmem = int(Path("/proc/sys/net/ipv4/tcp_rmem").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return 8 << 20
    return wmem + rmem


# Twice what the kernel holds, so that the rest must wait in the client's queue.
SLOW_EVENTS = max(1_000, 2 * _kernel_buffers() // EVENT_BYTES)


def publish(client: redis.Redis, jobs: list[str], pad: int = 0) -> None:
    """Well-formed job.started envelopes, one PUBLISH each, as the workers' publisher."""
    for job in jobs:
        raw = Event(job, 1, "job.started", 1.0, "STARTED", {"pad": "x" * pad}).encode()
        client.publish(CHANNEL, raw)


def payload_of(frame: bytes) -> bytes:
    return frame[{126: 4, 127: 10}.get(frame[1] & 0x7F, 2) :]


class RawSocket:
    """A WebSocket client on a bare socket: the handshake's headers as sent and answered,
    and the server's frames as they came on the wire."""

    def __init__(self, web: WebService, extensions: str = "") -> None:
        self.sock = socket.create_connection((web.host, web.port), timeout=10)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            "GET /ws HTTP/1.1",
            f"Host: {web.host}:{web.port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
            *(f"{k}: {v}" for k, v in auth_headers().items()),
            *([f"Sec-WebSocket-Extensions: {extensions}"] if extensions else []),
        ]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            self.buf += self.sock.recv(4096)
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        self.response = head.decode().lower()
        assert self.response.startswith("http/1.1 101")

    def send(self, message: str) -> None:
        mask = os.urandom(4)
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(message.encode()))
        assert len(payload) < 126
        self.sock.sendall(bytes((0x81, 0x80 | len(payload))) + mask + payload)

    def frame(self) -> bytes:
        """The next frame, whole: header and payload, as the server wrote it."""
        while True:
            if len(self.buf) >= 2:
                n, start = self.buf[1] & 0x7F, 2
                if n == 126 and len(self.buf) >= 4:
                    n, start = struct.unpack("!H", self.buf[2:4])[0], 4
                elif n == 127 and len(self.buf) >= 10:
                    n, start = struct.unpack("!Q", self.buf[2:10])[0], 10
                if (n < 126 or start > 2) and len(self.buf) >= start + n:
                    whole, self.buf = self.buf[: start + n], self.buf[start + n :]
                    return whole
            chunk = self.sock.recv(65536)
            assert chunk, "the server closed the connection"
            self.buf += chunk

    def message(self) -> dict[str, object]:
        whole = self.frame()
        assert whole[0] == 0x81, f"a final, uncompressed text frame, not {whole[0]:#x}"
        return dict(json.loads(payload_of(whole)))

    def jobs_of_events(self, n: int) -> tuple[list[str], int]:
        """The jobs of the next `n` events, in the order they came; and in how many frames."""
        got: list[str] = []
        frames = 0
        while len(got) < n:
            events = self.message()["events"]
            assert isinstance(events, list)
            frames += 1
            got += [str(e["job"]) for e in events]
        return got, frames

    def subscribe_jobs(self) -> None:
        self.send('{"op":"subscribe","topic":"jobs"}')
        while self.message().get("type") != "subscribed":
            pass

    def close(self) -> None:
        self.sock.close()


def test_every_client_gets_the_same_bytes_and_deflate_is_declined(
    web: WebService, redis_client: redis.Redis
) -> None:
    # given three clients on `jobs`, two of them offering permessage-deflate as browsers do
    offer = "permessage-deflate; client_max_window_bits"
    clients = [RawSocket(web, offer), RawSocket(web, offer), RawSocket(web)]
    try:
        # then the server declines it: no extension in its handshake answer
        for c in clients:
            assert "sec-websocket-extensions" not in c.response
        for c in clients:
            c.subscribe_jobs()
        # when a lifecycle event is published
        job = f"fan-{uuid.uuid4().hex[:8]}"
        publish(redis_client, [job])
        # then each client gets the very same frame: unmasked, uncompressed (RSV1 clear)
        frames = [c.frame() for c in clients]
        assert frames[0] == frames[1] == frames[2]
        assert frames[0][0] == 0x81
        payload = json.loads(payload_of(frames[0]))
        assert payload["topic"] == "jobs" and payload["events"][0]["job"] == job
    finally:
        for c in clients:
            c.close()


def test_a_burst_of_publishes_reaches_a_client_merged_in_order(
    web: WebService, redis_client: redis.Redis
) -> None:
    # given a client on `jobs`
    client = RawSocket(web)
    try:
        client.subscribe_jobs()
        # when 200 lifecycle events are published at once (one pipeline: they reach the
        # hub together, as a busy worker's do)
        jobs = [f"burst-{uuid.uuid4().hex[:6]}-{n:03d}" for n in range(200)]
        pipe = redis_client.pipeline(transaction=False)
        for job in jobs:
            pipe.publish(CHANNEL, Event(job, 1, "job.started", 1.0, "STARTED", {}).encode())
        pipe.execute()
        # then the client gets every one, once, in order
        got, frames = client.jobs_of_events(len(jobs))
        assert got == jobs
        # and in fewer frames than messages: what waited at the hub left together
        assert frames < len(jobs)
    finally:
        client.close()


@pytest.fixture
def roomy_web(platform: Platform) -> Iterator[WebService]:
    """A web process whose clients may queue all the slow test publishes."""
    bound = str(2 * SLOW_EVENTS * EVENT_BYTES)
    service = WebService(
        platform, name="web-roomy", extra_env={"AGENTDECK_CLIENT_QUEUE_BYTES": bound}
    )
    service.start()
    yield service
    service.stop()


def test_a_client_whose_socket_is_full_gets_every_event_in_order(
    roomy_web: WebService, redis_client: redis.Redis
) -> None:
    web = roomy_web
    # given a client on `jobs` that does not read for now
    slow = RawSocket(web)
    # and one that reads
    fast = websocket.create_connection(web.ws_url, timeout=10, header=auth_headers())
    try:
        slow.subscribe_jobs()
        fast.send('{"op":"subscribe","topic":"jobs"}')
        assert json.loads(fast.recv())["type"] == "subscribed"
        # when twice what the kernel's buffers hold is published, in 8 KB events
        jobs = [f"slow-{uuid.uuid4().hex[:6]}-{n:05d}" for n in range(SLOW_EVENTS)]
        publish(redis_client, jobs, pad=EVENT_BYTES)
        fast_got: list[str] = []
        while len(fast_got) < len(jobs):
            fast_got += [e["job"] for e in json.loads(fast.recv())["events"]]
        # then the reader got them all, in order
        assert fast_got == jobs
        # and the slow client, reading now, gets every one, in order, from its queue
        got, frames = slow.jobs_of_events(len(jobs))
        assert got == jobs
        # and what waited for it left merged: fewer frames than events
        assert frames < len(jobs)
    finally:
        slow.close()
        fast.close()
