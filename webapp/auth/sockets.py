"""Closes WebSockets whose credentials stopped working, and those that never logged in.

HTTP requests are checked one by one; a socket authenticates once and then
stays open for hours, so each web process re-checks its sockets' credentials
every few seconds: revoking a token, ending a session or disabling a user
closes their sockets within `EVERY` plus the store's cache time.
"""

from __future__ import annotations

import time

from webapp.auth.store import AccountStore
from webapp.clients import CLOSE_UNAUTHORIZED, Client
from webapp.hub import Hub
from webapp.loops import Loop

EVERY = 2.0
AUTH_WITHIN = 10.0  # seconds a socket may stay open without authenticating


class SocketWarden(Loop):
    def __init__(self, hub: Hub, store: AccountStore) -> None:
        # A failed sweep (SQL away) is tried again soon: revoked credentials wait meanwhile.
        super().__init__(
            "socket-warden", every=EVERY, backoff=EVERY, backoff_cap=2 * EVERY, wait_first=True
        )
        self.hub = hub
        self.store = store

    def tick(self) -> float | None:
        self.sweep()
        return None

    def sweep(self) -> int:
        """Close what must close now; returns how many sockets were closed."""
        now = time.monotonic()
        closed = self.hub.close_where(
            lambda c: c.principal is None and now - c.opened_at > AUTH_WITHIN,
            CLOSE_UNAUTHORIZED,
            "not authenticated",
        )
        with self.hub.lock:
            clients = list(self.hub.clients)
        ids = {cid for c in clients if (cid := _credential(c)) is not None}
        dead = ids - self.store.still_valid(ids)
        if dead:
            closed += self.hub.close_where(
                lambda c: _credential(c) in dead, CLOSE_UNAUTHORIZED, "credentials revoked"
            )
        return closed


def _credential(client: Client) -> str | None:
    return client.principal.credential_id if client.principal is not None else None
