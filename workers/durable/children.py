"""Child jobs of a durable run: made once, whatever the run's replays do.

A child's id is derived from its parent's id and the spawn's step index, so a
run killed after making the child but before recording it makes no second
child when it runs again: the row is there already, and the task is sent only
if nothing was ever said about the child.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from workers.events import FINAL_STATES, JobState
from workers.keys import Keys
from workers.models import Job
from workers.replay_log import head_of
from workers.runtime import RUN_AGENT_TASK, get_agent
from workers.settings import get_settings

CHILDREN = uuid.UUID("6f1d8c4e-2b7a-4d1e-9c3f-0a5b7e9d1c22")  # uuid5 namespace


@dataclass(frozen=True)
class Parent:
    id: str
    owner_id: str | None
    root_id: str | None
    queue: str | None


@dataclass(frozen=True)
class ChildOutcome:
    id: str
    state: str
    result: Any
    error: str | None


def child_id(parent: str, idx: int) -> str:
    return str(uuid.uuid5(CHILDREN, f"{parent}:{idx}"))


def spawn(
    sessions: sessionmaker,
    client: redis.Redis,
    keys: Keys,
    send: Callable[..., Any],
    parent: Parent,
    idx: int,
    agent: str,
    input: dict[str, Any],
) -> str:
    """Make (once) and send the child job; its id."""
    spec = get_agent(agent)
    values = spec.validate(input)
    job_id = child_id(parent.id, idx)
    row = Job(
        id=job_id,
        name=RUN_AGENT_TASK,
        agent=agent,
        state=JobState.PENDING.value,
        input=values,
        queue=parent.queue,
        owner_id=parent.owner_id,
        parent_id=parent.id,
        root_id=parent.root_id or parent.id,
        retries=0,
        created_at=time.time(),
        last_seq=0,
        run_no=0,
    )
    try:
        with sessions.begin() as s:
            s.add(row)
    except IntegrityError:
        said, _ = head_of(client, keys, job_id)
        if said:  # made and sent by this run's earlier self
            return job_id
    soft, hard = spec.time_limits(get_settings().run_time_limit)
    options: dict[str, Any] = {"task_id": job_id, "soft_time_limit": soft, "time_limit": hard}
    if parent.queue:
        options["queue"] = parent.queue
    send(RUN_AGENT_TASK, args=[agent, values], **options)
    return job_id


def outcomes(sessions: sessionmaker, ids: list[str]) -> list[ChildOutcome] | None:
    """The children's outcomes as recorded in SQL, in order; None while any runs on."""
    with sessions() as s:
        rows = {r.id: r for r in s.scalars(select(Job).where(Job.id.in_(ids)))}
    found = []
    for job_id in ids:
        row = rows.get(job_id)
        if row is None or row.state not in FINAL_STATES:
            return None
        found.append(ChildOutcome(job_id, row.state, row.result, row.error))
    return found
