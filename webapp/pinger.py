"""Pings every WebSocket every `EVERY` seconds; one that has not answered the last ping
is closed (1008). One loop for all sockets: an idle socket keeps no timer of its own."""

from __future__ import annotations

from webapp import wsframes
from webapp.clients import CLOSE_POLICY
from webapp.hub import Hub
from webapp.loops import Loop

EVERY = 25.0


class Pinger(Loop):
    def __init__(self, hub: Hub, every: float = EVERY) -> None:
        super().__init__("ws-pinger", every=every, wait_first=True)
        self.hub = hub

    def tick(self) -> float | None:
        self.ping()
        return None

    def ping(self) -> int:
        """Close the silent, ping the rest; how many were closed."""
        with self.hub.lock:
            clients = list(self.hub.clients)
        silent = 0
        for client in clients:
            if client.awaiting_pong:
                client.close(CLOSE_POLICY, "ping/pong timeout")
                silent += 1
            else:
                client.awaiting_pong = True
                client.put_bytes(wsframes.PING)
        return silent
