"""Tasks from SQL history in Flower's shape, with its filters, sorting and paging.

Every task a monitored worker ran is a `Job` row (agents are tasks too), so
the list survives restarts and costs the web process no memory per task.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from webapp import params
from webapp.errors import ApiError
from webapp.monitor import search as search_mod
from workers.events import JobState
from workers.models import Job

MAX_LIMIT = 1000
RECEIVED_FORMAT = "%Y-%m-%d %H:%M"
RUNTIME = Job.finished_at - Job.started_at
SORT_KEYS: dict[str, Any] = {
    "name": Job.name,
    "state": Job.state,
    "received": Job.received_at,
    "started": Job.started_at,
    "sent": Job.created_at,
    "created": Job.created_at,
    "worker": Job.worker,
    "runtime": RUNTIME,
    "retries": Job.retries,
}
# Flower's field for the time a task reached each final state.
FINISHED_FIELD: dict[str, str] = {
    JobState.SUCCESS: "succeeded",
    JobState.FAILURE: "failed",
    JobState.REVOKED: "revoked",
}


def runtime_of(job: Job) -> float | None:
    if job.started_at and job.finished_at:
        return round(job.finished_at - job.started_at, 6)
    return None


def flower_task(job: Job) -> dict[str, Any]:
    """The fields of Celery's `events.state.Task`, as Flower's /api/tasks gives them."""
    done = FINISHED_FIELD.get(job.state)
    return {
        "uuid": job.id,
        "name": job.name or None,
        "state": job.state,
        "received": job.received_at,
        "sent": job.created_at,
        "started": job.started_at,
        "rejected": None,
        "succeeded": job.finished_at if done == "succeeded" else None,
        "failed": job.finished_at if done == "failed" else None,
        "retried": job.updated_at if job.state == JobState.RETRY else None,
        "revoked": job.finished_at if done == "revoked" else None,
        "args": job.args,
        "kwargs": job.kwargs,
        "eta": None,
        "expires": None,
        "retries": job.retries,
        "worker": job.worker,
        "result": repr(job.result) if job.result is not None else None,
        "exception": job.error if job.state == JobState.FAILURE else None,
        "timestamp": job.updated_at or job.created_at,
        "runtime": runtime_of(job),
        "traceback": job.traceback,
        "exchange": None,
        "routing_key": job.queue,
        "clock": job.last_seq,
        "client": None,
        "root": job.root_id,
        "root_id": job.root_id,
        "parent": job.parent_id,
        "parent_id": job.parent_id,
        "children": [],
    }


def flower_info(job: Job, children: list[str]) -> dict[str, Any]:
    """/api/task/info/<id>: the task's fields (Celery's `Task.as_dict()`, as Flower 2.2
    answers: `uuid`, no `task-id`), with its children."""
    out = flower_task(job)
    out["children"] = children
    return out


def children_of(s: Session, job_id: str, limit: int = 1000) -> list[str]:
    rows = s.scalars(
        select(Job.id).where(Job.parent_id == job_id).order_by(Job.created_at).limit(limit)
    )
    return list(rows)


def time_arg(value: str | None, name: str) -> float | None:
    """A time filter: `2024-01-31 13:45` (local time, as Flower takes it) or seconds
    since the epoch."""
    if not value:
        return None
    try:
        return time.mktime(datetime.strptime(value, RECEIVED_FORMAT).timetuple())
    except ValueError:
        pass  # then seconds since the epoch
    try:
        return params.float_arg(name, value, None, 0, params.MAX_TIMESTAMP)
    except ApiError:
        raise ApiError(
            400,
            "bad_request",
            f'"{name}" must look like 2024-01-31 13:45 or be seconds since the epoch',
            field=name,
        ) from None


def build_filters(args: dict[str, str]) -> list[Any]:
    """Flower's /api/tasks filters (plus `search`) as SQL conditions."""
    out: list[Any] = []
    all_ = ("", "All", None)
    if args.get("workername") not in all_:
        out.append(Job.worker == args["workername"])
    if args.get("taskname") not in all_:
        out.append(Job.name == args["taskname"])
    if args.get("state") not in all_:
        out.append(Job.state == args["state"].upper())
    start = time_arg(args.get("received_start"), "received_start")
    if start is not None:
        out.append(Job.received_at >= start)
    end = time_arg(args.get("received_end"), "received_end")
    if end is not None:
        out.append(Job.received_at <= end)
    if args.get("until"):
        out.append(Job.created_at <= time_arg(args["until"], "until"))
    out += search_mod.filters(search_mod.parse(args.get("search")))
    return out


def order_by(sort_by: str | None) -> list[Any]:
    """Flower's `sort_by` (name, state, received, started; `-` for descending), newest first
    by default; ties broken by id so that pages never overlap."""
    if not sort_by:
        return [Job.created_at.desc(), Job.id.desc()]
    desc = sort_by.startswith("-")
    key = sort_by.lstrip("-")
    column = SORT_KEYS.get(key)
    if column is None:
        raise ApiError(400, "bad_request", f"cannot sort by {key!r}: use {', '.join(SORT_KEYS)}")
    if desc:
        return [column.desc().nulls_last(), Job.id.desc()]
    return [column.asc().nulls_last(), Job.id.asc()]


def int_arg(args: dict[str, str], name: str, default: int | None) -> int | None:
    """A count or position (`limit`, `offset`): 0 up to `params.MAX_INT`."""
    return params.int_arg(name, args.get(name), default, 0, params.MAX_INT)


def query(
    s: Session,
    args: dict[str, str],
    *,
    default_limit: int | None,
    count: bool = False,
    owner: str | None = None,
) -> tuple[list[Job], int | None]:
    """Tasks matching Flower's filters; only `owner`'s jobs when one is given."""
    limit = int_arg(args, "limit", default_limit)
    offset = int_arg(args, "offset", 0) or 0
    conds = build_filters(args)
    if owner is not None:
        conds.append(Job.owner_id == owner)
    stmt = select(Job).where(*conds).order_by(*order_by(args.get("sort_by"))).offset(offset)
    stmt = stmt.limit(MAX_LIMIT * 10 if limit is None else min(limit, MAX_LIMIT))
    rows = list(s.scalars(stmt))
    total = s.scalar(select(func.count()).select_from(Job).where(*conds)) if count else None
    return rows, total


def task_types(s: Session) -> list[str]:
    return sorted(n for n in s.scalars(select(Job.name).distinct()) if n)
