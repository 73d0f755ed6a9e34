"""A job's events after a given seq: from the replay log, or SQL where the log is gone."""

from __future__ import annotations

from dataclasses import dataclass

import redis
from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from workers.envelope import Event, read_seq
from workers.keys import Keys
from workers.models import EventRow
from workers.replay_log import read_log

# (seq, envelope as JSON text): the raw text is forwarded to clients as it is.
Item = tuple[int, str]


@dataclass(frozen=True, slots=True)
class Replay:
    items: list[Item]
    head: int  # the job's last seq known anywhere
    complete: bool  # False: a gap neither the log nor SQL can fill


def row_to_event(row: EventRow) -> Event:
    return Event(
        job=row.job_id, seq=row.seq, type=row.type, ts=row.ts, state=row.state, data=row.data or {}
    )


def events_since(
    client: redis.Redis, sessions: sessionmaker, keys: Keys, job: str, since: int
) -> Replay:
    head, logged = read_log(client, keys, job, since)  # log and head read at one instant
    items: list[Item] = [(read_seq(text), text) for text in logged]
    first_in_log = items[0][0] if items else head + 1
    if first_in_log > since + 1 or head < since:
        # The log was trimmed, expired or lost: SQL has what the recorder stored.
        with sessions() as s:
            rows = s.scalars(
                select(EventRow)
                .where(EventRow.job_id == job, EventRow.seq > since, EventRow.seq < first_in_log)
                .order_by(EventRow.seq)
            ).all()
            sql_head = s.scalar(select(func.max(EventRow.seq)).where(EventRow.job_id == job)) or 0
        items = [(r.seq, row_to_event(r).encode()) for r in rows] + items
        head = max(head, sql_head)
    contiguous = all(seq == since + 1 + i for i, (seq, _) in enumerate(items))
    last = items[-1][0] if items else since
    return Replay(items=items, head=max(head, last), complete=contiguous and last == head)
