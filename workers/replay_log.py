"""Reading a job's replay log: its envelopes after a given seq, its head.

The log is a Redis list, oldest first, appended by the publish script (see
`workers/lua/publish.lua`) in the same atomic call that takes the seqs, so it
holds seqs head-len+1 .. head without a hole (a list append costs Redis a
fraction of a sorted-set insert of the same ~300-byte envelope). Its last
entry is the job's head: its seq is the job's last seq and its state the
job's state, so no other per-job key is kept. A reader takes the head and
the tail of the list at one instant, and keeps what is after `since` by each
envelope's own seq, so a log that is not contiguous after all still reads
right.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import redis
from redis.commands.core import Script

from workers import lua
from workers.envelope import read_seq, read_state
from workers.keys import Keys


def head_of(client: redis.Redis, keys: Keys, job: str) -> tuple[int, str | None]:
    """(the job's last seq, its state) as Redis has them; (0, None) for a job it has not."""
    tip = client.lindex(keys.log(job), -1)
    if tip is None:
        return 0, None
    envelope = _text(tip)
    return read_seq(envelope), read_state(envelope)


def _text(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


_read_script: Script | None = None


def _read(client: redis.Redis) -> Script:
    global _read_script
    if _read_script is None:  # the script's digest is computed once, for any client
        _read_script = client.register_script(lua.READ_LOG)
    return _read_script


def _kept(
    client: redis.Redis, keys: Keys, job: str, since: int, reply: list[Any]
) -> tuple[int, list[str]]:
    head, start, raws = reply
    entries = [_text(raw) for raw in raws]
    if entries and int(start) > 0 and read_seq(entries[0]) > since + 1:
        entries = [_text(raw) for raw in client.lrange(keys.log(job), 0, -1)]  # not contiguous
    return int(head), [e for e in entries if read_seq(e) > since]


def read_log(client: redis.Redis, keys: Keys, job: str, since: int) -> tuple[int, list[str]]:
    """(the job's head seq, its logged envelopes with a seq after `since`, in order)."""
    return read_logs(client, keys, [(job, since)])[0]


# Logs read by one script call: a pass of the recorder reads a few hundred in one.
LOGS_A_CALL = 200


def read_logs(
    client: redis.Redis, keys: Keys, wanted: Iterable[tuple[str, int]]
) -> list[tuple[int, list[str]]]:
    """`read_log` for several (job, since) pairs in one round trip."""
    wanted = list(wanted)
    if not wanted:
        return []
    script = _read(client)
    chunks = [wanted[i : i + LOGS_A_CALL] for i in range(0, len(wanted), LOGS_A_CALL)]
    if len(chunks) == 1:
        replies = script(
            keys=[keys.log(j) for j, _ in wanted], args=[s for _, s in wanted], client=client
        )
    else:
        pipe = client.pipeline(transaction=False)
        for chunk in chunks:
            script(keys=[keys.log(j) for j, _ in chunk], args=[s for _, s in chunk], client=pipe)
        replies = [reply for replies_of_chunk in pipe.execute() for reply in replies_of_chunk]
    return [_kept(client, keys, j, s, r) for (j, s), r in zip(wanted, replies, strict=True)]


def first_entries(client: redis.Redis, keys: Keys, job: str, n: int) -> list[str]:
    """The oldest `n` envelopes still in the job's log."""
    return [_text(raw) for raw in client.lrange(keys.log(job), 0, n - 1)]
