"""A client's outgoing side on real sockets (socketpairs): frames written at once when the
socket takes them, queued in order when it is full, cut at the byte bound; pings."""

from __future__ import annotations

import json
import socket
import struct
from collections.abc import Iterator

import pytest
import redis
from sqlalchemy.orm import sessionmaker

from webapp import wsframes
from webapp.clients import CLOSE_POLICY, CLOSE_TOO_SLOW, Client, events_bytes
from webapp.hub import Hub
from webapp.pinger import Pinger
from workers.settings import Settings

TOPIC = "jobs"


def envelope(n: int, pad: int = 0) -> str:
    return json.dumps({"job": f"j{n}", "seq": 1, "type": "job.started", "pad": "x" * pad})


@pytest.fixture
def pairs() -> Iterator[list[tuple[socket.socket, socket.socket]]]:
    made: list[tuple[socket.socket, socket.socket]] = []
    yield made
    for a, b in made:
        a.close()
        b.close()


def pair(
    made: list[tuple[socket.socket, socket.socket]], small: bool = False
) -> tuple[socket.socket, socket.socket]:
    server, peer = socket.socketpair()
    if small:  # a socket that fills after a few KB
        server.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        peer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    made.append((server, peer))
    return server, peer


def read_frames(
    sock: socket.socket, until_close: bool = False, want: int = 0
) -> list[tuple[int, bytes]]:
    """Server frames read from the peer's end: (opcode, payload), until a close frame or
    `want` text frames' events."""
    sock.settimeout(10)
    buf = b""
    frames: list[tuple[int, bytes]] = []
    events = 0
    while True:
        while True:  # parse what is buffered
            if len(buf) < 2:
                break
            opcode, n = buf[0] & 0x0F, buf[1] & 0x7F
            assert buf[1] & 0x80 == 0, "server frames are not masked"
            start = 2
            if n == 126:
                (n,) = struct.unpack("!H", buf[2:4])
                start = 4
            elif n == 127:
                (n,) = struct.unpack("!Q", buf[2:10])
                start = 10
            if len(buf) < start + n:
                break
            frames.append((opcode, buf[start : start + n]))
            if opcode == wsframes.OP_TEXT:
                events += len(json.loads(frames[-1][1]).get("events", []))
            buf = buf[start + n :]
            if opcode == wsframes.OP_CLOSE or (want and events >= want and not until_close):
                return frames
        chunk = sock.recv(65536)
        if not chunk:
            return frames
        buf += chunk


def events_of(frames: list[tuple[int, bytes]]) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for opcode, payload in frames:
        if opcode == wsframes.OP_TEXT:
            out += json.loads(payload)["events"]
    return out


def test_one_frame_reaches_every_client_byte_identical(pairs: list) -> None:
    # given five clients on free sockets, and an event's frame built once
    clients = [(Client(1 << 20, None, s), p) for s, p in (pair(pairs) for _ in range(5))]
    raws = [envelope(1)]
    frame = events_bytes(TOPIC, raws)
    # when it is sent to each
    for client, _ in clients:
        assert client.put_events(TOPIC, raws, frame)
    # then every peer reads exactly those bytes: one unmasked text frame of the events
    for _, peer in clients:
        peer.settimeout(5)
        got = b""
        while len(got) < len(frame):
            got += peer.recv(65536)
        assert got == frame
    opcode, payload = read_frames_from(frame)
    assert opcode == wsframes.OP_TEXT
    assert json.loads(payload) == {
        "type": "events",
        "topic": TOPIC,
        "events": [json.loads(raws[0])],
    }


def read_frames_from(data: bytes) -> tuple[int, bytes]:
    a, b = socket.socketpair()
    with a, b:
        a.sendall(data)
        ((opcode, payload),) = read_frames(b, want=1)
    return opcode, payload


def test_a_client_whose_socket_is_full_gets_every_event_in_order_from_its_queue(
    pairs: list,
) -> None:
    # given a client whose peer does not read yet
    server, peer = pair(pairs, small=True)
    client = Client(4 << 20, None, server)
    # when 400 events of 1 KB are sent, each alone (the socket fills after a few)
    for n in range(400):
        raws = [envelope(n, pad=1000)]
        assert client.put_events(TOPIC, raws, events_bytes(TOPIC, raws))
    queued = client._queue is not None and len(client._queue) > 0
    # then they wait in its queue, and the peer, reading now, gets every one in order
    assert queued
    frames = read_frames(peer, want=400)
    assert [e["job"] for e in events_of(frames)] == [f"j{n}" for n in range(400)]
    # and what waited left merged: fewer frames than events
    assert len(frames) < 400
    assert not client.closed
    # and, drained, the client holds no queue and no flusher
    assert client.finish(5)
    assert client._queue is None and client._flusher is None


def test_a_client_over_its_byte_bound_is_closed_with_4001_after_what_was_sent(
    pairs: list,
) -> None:
    # given a client with a 64 KB bound whose peer does not read
    server, peer = pair(pairs, small=True)
    client = Client(64 * 1024, None, server)
    # when 1 MB of events is sent to it
    accepted = 0
    for n in range(1000):
        raws = [envelope(n, pad=1000)]
        if not client.put_events(TOPIC, raws, events_bytes(TOPIC, raws)):
            break
        accepted += 1
    # then it is closed as too slow, before it took them all
    assert client.close_code == CLOSE_TOO_SLOW
    assert accepted < 1000
    # and the peer reads a prefix of the events, in order, then the close frame 4001
    frames = read_frames(peer, until_close=True)
    jobs = [e["job"] for e in events_of(frames)]
    assert jobs == [f"j{n}" for n in range(len(jobs))]
    assert frames[-1][0] == wsframes.OP_CLOSE
    assert struct.unpack("!H", frames[-1][1][:2])[0] == CLOSE_TOO_SLOW
    # and nothing more is taken
    assert not client.put_events(TOPIC, [envelope(0)])


def test_put_last_sends_the_message_then_closes(pairs: list) -> None:
    server, peer = pair(pairs)
    client = Client(1 << 20, None, server)
    client.put_last('{"type":"error"}', 4401, "not authenticated")
    frames = read_frames(peer, until_close=True)
    assert frames[0] == (wsframes.OP_TEXT, b'{"type":"error"}')
    assert frames[-1][0] == wsframes.OP_CLOSE
    assert struct.unpack("!H", frames[-1][1][:2])[0] == 4401


def test_close_stops_the_reader(pairs: list) -> None:
    # given a client whose reader waits on its socket
    server, _peer = pair(pairs)
    client = Client(1 << 20, None, server)
    # when the server closes it (going away)
    client.close(1001, "server going away")
    # then its socket reads end (the reader's loop ends there)
    server.settimeout(2)
    assert server.recv(10) == b""


def test_the_pinger_pings_and_closes_those_that_never_answer(pairs: list) -> None:
    # given a hub with two clients
    hub = Hub(Settings(), redis.Redis(), sessionmaker())
    (s1, p1), (s2, p2) = pair(pairs), pair(pairs)
    answers, silent = Client(1 << 20, None, s1), Client(1 << 20, None, s2)
    hub.register(answers)
    hub.register(silent)
    pinger = Pinger(hub)
    # when a round of pings goes out
    assert pinger.ping() == 0
    # then each got a ping frame
    for peer in (p1, p2):
        peer.settimeout(5)
        assert peer.recv(2) == wsframes.PING
    # and when only one answers before the next round, the other is closed (1008)
    answers.awaiting_pong = False  # what the reader does with a pong
    assert pinger.ping() == 1
    assert silent.close_code == CLOSE_POLICY and not answers.closed
    frames = read_frames(p2, until_close=True)
    assert struct.unpack("!H", frames[-1][1][:2])[0] == CLOSE_POLICY
