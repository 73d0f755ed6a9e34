"""The one connection a publisher runs the publish script on.

The script (`workers/lua/publish.lua`) gives a batch of events their seqs and
states, appends them to their jobs' replay logs and PUBLISHes them, in one
atomic call. `ScriptConnection` runs it on a connection of its own, without
redis-py's per-command machinery (pool checkout, retry wrapper, response
callbacks): that machinery costs ~4x the round trip's own CPU, paid
by a Celery worker's pool process for every batch.
"""

from __future__ import annotations

from typing import Any

import redis
from redis.connection import ConnectionInterface


class ScriptConnection:
    """Runs one script by its digest on a dedicated connection (loaded on NOSCRIPT).

    Used by one thread only. A failed call leaves the connection closed (redis-py
    closes it on a timeout or a socket error), so the next call reconnects.
    """

    def __init__(self, client: redis.Redis, source: str) -> None:
        self._source = source
        self.sha = client.register_script(source).sha
        self._conn: ConnectionInterface = client.connection_pool.make_connection()

    def __call__(self, keys: list[str], args: list[Any]) -> Any:
        try:
            return self._run("EVALSHA", self.sha, len(keys), *keys, *args)
        except redis.exceptions.NoScriptError:
            self._run("SCRIPT", "LOAD", self._source)
            return self._run("EVALSHA", self.sha, len(keys), *keys, *args)

    def _run(self, *command: Any) -> Any:
        conn = self._conn
        try:
            conn.send_packed_command(conn.pack_command(*command))
            reply = conn.read_response()
        except redis.exceptions.ResponseError:
            raise  # the server answered: the connection is in step
        except BaseException:
            conn.disconnect()  # a reply may still come: never read it as the next one's
            raise
        return reply
