"""A burst of subscribes on the real web process: every socket is subscribed, none reset.

Issue 14 (streaming bench, 1,100 watchers): when more sockets than the web's Redis pool
holds (100 connections) subscribed at once, the replays past the hundredth failed with
"Too many connections" and their clients got `reset` instead of `subscribed`.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter

import websocket

from tests.support.http import auth_headers
from tests.support.services import WebService

SOCKETS = 300  # three times the pool's connections


def test_a_burst_of_subscribes_gets_every_socket_subscribed(web: WebService) -> None:
    # given many open sockets, each about to watch a job of its own
    conns = [
        websocket.create_connection(web.ws_url, timeout=15, header=auth_headers())
        for _ in range(SOCKETS)
    ]
    try:
        topics = [f"job:burst-{uuid.uuid4().hex[:12]}" for _ in conns]
        # when they all subscribe at once (every frame sent before any answer is read)
        for conn, topic in zip(conns, topics, strict=True):
            conn.send(json.dumps({"op": "subscribe", "topic": topic, "since": 0}))
        # then every one is subscribed to its job, and none is told to reload
        answers = [json.loads(conn.recv()) for conn in conns]
        assert Counter(a.get("type") for a in answers) == {"subscribed": SOCKETS}
        assert [a["topic"] for a in answers] == topics
    finally:
        for conn in conns:
            conn.close()
