"""The one connection a publisher runs the publish script on.

The script (`workers/lua/publish.lua`) gives a batch of events their seqs and
states, appends them to their jobs' replay logs and PUBLISHes them, in one
atomic call. `ScriptConnection` runs it on a connection of its own, without
redis-py's per-command machinery (pool checkout, retry wrapper, response
callbacks): that machinery costs ~4x the round trip's own CPU, paid
by a Celery worker's pool process for every batch.

With `replicas` (Redis Sentinel: a failover promotes a replica), each call is
followed, in the same write, by `WAIT replicas timeout`: the call counts as
done only once a replica holds its effects. Replication is asynchronous, so
without it a batch the primary acknowledged could die with the primary; with
it, a primary that dies first fails the call, and the publisher sends the
batch again to the new primary (same receipt: a batch the replica holds is
not applied twice; one it does not hold gets the same seqs again). A replica
that does not answer within the timeout is waited for no longer for a while
(`DEGRADED_FOR`): publishing goes on, unprotected, rather than stall.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import redis
from redis.connection import ConnectionInterface

log = logging.getLogger("agentdeck.publisher")

WAIT_MS = 1000  # how long a call waits for a replica to hold its effects
DEGRADED_FOR = 10.0  # seconds without waiting after a replica did not answer in time


class ScriptConnection:
    """Runs one script by its digest on a dedicated connection (loaded on NOSCRIPT).

    Used by one thread only. A failed call leaves the connection closed (redis-py
    closes it on a timeout or a socket error), so the next call reconnects.
    """

    def __init__(self, client: redis.Redis, source: str, replicas: int = 0) -> None:
        self._source = source
        self.sha = client.register_script(source).sha
        self._conn: ConnectionInterface = client.connection_pool.make_connection()
        self.replicas = replicas
        self.unreplicated = 0  # calls a replica did not confirm in time
        self._degraded_until = 0.0

    def __call__(self, keys: list[str], args: list[Any]) -> Any:
        try:
            return self._run("EVALSHA", self.sha, len(keys), *keys, *args)
        except redis.exceptions.NoScriptError:
            self._run("SCRIPT", "LOAD", self._source)
            return self._run("EVALSHA", self.sha, len(keys), *keys, *args)

    def _run(self, *command: Any) -> Any:
        conn = self._conn
        wait = self.replicas > 0 and time.monotonic() >= self._degraded_until
        try:
            # Connect through the connection's own connect(): sending on an unconnected
            # one would skip a Sentinel-managed connection's lookup of the primary.
            conn.connect()
            packed = conn.pack_command(*command)
            if wait:
                packed += conn.pack_command("WAIT", self.replicas, WAIT_MS)
            conn.send_packed_command(packed)
            try:
                reply = conn.read_response()
            except redis.exceptions.ResponseError:
                if wait:  # its WAIT's reply follows: read it, so the connection stays in step
                    conn.read_response()
                raise
            acked = int(conn.read_response()) if wait else 0
        except redis.exceptions.ResponseError:
            raise  # the server answered: the connection is in step
        except BaseException:
            conn.disconnect()  # a reply may still come: never read it as the next one's
            raise
        if wait and acked < self.replicas:
            self.unreplicated += 1
            self._degraded_until = time.monotonic() + DEGRADED_FOR
            log.warning(
                "no replica confirmed an event batch within %d ms: not waiting for "
                "replicas for %g s (a failover meanwhile may lose events)",
                WAIT_MS,
                DEGRADED_FOR,
            )
        return reply
