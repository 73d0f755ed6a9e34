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
not applied twice; one it does not hold gets the same seqs again).

A call no replica confirms in time is not done either: the primary may have
been failed over while it runs on (`SENTINEL FAILOVER`, a partition), its
replica promoted, and whatever it takes now is dropped when the Sentinels
demote it. So the call fails (and is retried) as long as the Sentinels name
another primary, or for `GRACE` seconds while they make up their minds. Only
a primary the Sentinels still name after that has lost its replica for real:
then the calls go on without waiting for `DEGRADED_FOR` seconds at a time
(publishing goes on, unprotected, rather than stall; a log line says so).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import redis
from redis.connection import ConnectionInterface

from workers.redis_urls import primary_address

log = logging.getLogger("agentdeck.publisher")

WAIT_MS = 1000  # how long a call waits for a replica to hold its effects
GRACE = 3.0  # seconds of unconfirmed calls before a primary without replica is taken as is
DEGRADED_FOR = 10.0  # seconds without waiting, then, before trying again


class NotReplicated(redis.ConnectionError):
    """No replica confirmed the call: it is retried, on the primary the Sentinels name."""


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
        self._client = client
        self.unreplicated = 0  # calls a replica did not confirm in time
        self._degraded_until = 0.0
        self._unconfirmed_since: float | None = None  # the first of a run of such calls
        self._degraded = False  # the primary has no replica (the last probe said so)

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
        if wait:
            self._confirmed(conn, acked >= self.replicas)
        return reply

    def _confirmed(self, conn: ConnectionInterface, ok: bool) -> None:
        """After a call's WAIT: go on, or raise `NotReplicated` to have it retried."""
        now = time.monotonic()
        if ok:
            self._unconfirmed_since, self._degraded = None, False
            return
        self.unreplicated += 1
        primary = primary_address(self._client)
        where = (str(getattr(conn, "host", "")), int(getattr(conn, "port", 0)))
        if primary is not None and primary != where:
            conn.disconnect()  # the next call connects to the primary the Sentinels name
            raise NotReplicated(f"the primary moved to {primary[0]}:{primary[1]}")
        if self._unconfirmed_since is None:
            self._unconfirmed_since = now
        if not self._degraded and now - self._unconfirmed_since < GRACE:
            raise NotReplicated("no replica confirmed the event batch yet")
        self._degraded = True
        self._degraded_until = now + DEGRADED_FOR
        log.warning(
            "the primary has no replica that confirms event batches: not waiting for "
            "replicas for %g s (a failover meanwhile may lose events)",
            DEGRADED_FOR,
        )
