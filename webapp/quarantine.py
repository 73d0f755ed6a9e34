"""Jobs the recorder cannot store, set aside so that they stop nobody else.

A job whose events SQL refuses (or whose id is not text) would be retried in
every recorder pass forever. After `MAX_ATTEMPTS` failures while Redis and SQL
both answer, the recorder quarantines it: the job leaves the dirty set, and
its id and last error stay in the `Keys.quarantine` hash for people to see
(and on /metrics). A new event of the job marks it dirty again, so it gets
another try; once recorded, it leaves the quarantine.
"""

from __future__ import annotations

import json
import time

import redis

from workers.keys import Keys

MAX_ATTEMPTS = 3
MAX_ERROR_CHARS = 1000


def put(client: redis.Redis, keys: Keys, job: bytes, error: str, attempts: int) -> None:
    """Keep `job` (its dirty-set member, as stored) with `error`; take it out of the set."""
    why = {"error": error[:MAX_ERROR_CHARS], "attempts": attempts, "at": time.time()}
    pipe = client.pipeline(transaction=True)
    pipe.hset(keys.quarantine, job, json.dumps(why))
    pipe.zrem(keys.dirty, job)
    pipe.execute()


def release(client: redis.Redis, keys: Keys, job: bytes) -> None:
    client.hdel(keys.quarantine, job)


def count(client: redis.Redis, keys: Keys) -> int:
    return int(client.hlen(keys.quarantine))  # type: ignore[arg-type]
