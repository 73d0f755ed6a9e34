"""Jobs as the REST API sees them: submit, list, read, cancel, retry, answer."""

from __future__ import annotations

import base64
import json
import math
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis
from sqlalchemy import func, or_, select

from webapp import waits
from webapp.auth.roles import Principal
from webapp.errors import ApiError
from webapp.history import apply_event
from webapp.monitor.broadcasts import revoke_task
from webapp.params import MAX_INT, int_arg
from webapp.queues import check_queue
from webapp.services import Services
from webapp.submitter import Pending
from workers.durable import store
from workers.envelope import EnvelopeError, decode
from workers.events import FINAL_STATES, JobState
from workers.models import Job
from workers.replay_log import head_of, read_logs
from workers.runtime import RUN_AGENT_TASK, InputError, UnknownAgent, get_agent

FORCE_CANCEL_AFTER = 5.0
MAX_PAGE = 200


def job_to_dict(job: Job, viewer: Principal | None = None) -> dict[str, Any]:
    """The job as the API shows it; its traceback only to its owner and admins."""
    runtime = None
    if job.started_at and job.finished_at:
        runtime = round(job.finished_at - job.started_at, 6)
    return {
        "id": job.id,
        "agent": job.agent,
        "name": job.name,
        "state": job.state,
        "input": job.input,
        "args": job.args,
        "kwargs": job.kwargs,
        "result": job.result,
        "error": job.error,
        "traceback": job.traceback if _may_read_traceback(job, viewer) else None,
        "queue": job.queue,
        "priority": job.priority,
        "idempotency_key": job.idempotency_key,
        "retry_of": job.retry_of,
        "owner_id": job.owner_id,
        "parent_id": job.parent_id,
        "root_id": job.root_id,
        "worker": job.worker,
        "retries": job.retries,
        "created_at": job.created_at,
        "received_at": job.received_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "updated_at": job.updated_at,
        "last_seq": job.last_seq,
        "runtime": runtime,
    }


def _may_read_traceback(job: Job, viewer: Principal | None) -> bool:
    return viewer is None or viewer.is_admin or job.owner_id == viewer.user_id


@dataclass(frozen=True)
class Submission:
    agent: str
    input: dict[str, Any]
    queue: str | None = None
    priority: int | None = None
    idempotency_key: str | None = None

    @classmethod
    def parse(cls, body: Any) -> Submission:
        if not isinstance(body, dict):
            raise ApiError(400, "bad_request", "the body must be a JSON object")
        agent = body.get("agent")
        if not isinstance(agent, str) or not agent:
            raise ApiError(
                422, "invalid_input", '"agent" must be a non-empty string', field="agent"
            )
        raw_input = body.get("input", {})
        if not isinstance(raw_input, dict):
            raise ApiError(422, "invalid_input", '"input" must be a JSON object', field="input")
        queue = body.get("queue")
        if queue is not None and (not isinstance(queue, str) or not 0 < len(queue) <= 200):
            raise ApiError(422, "invalid_input", '"queue" must be a short string', field="queue")
        priority = body.get("priority")
        if priority is not None and (
            isinstance(priority, bool) or not isinstance(priority, int) or not 0 <= priority <= 9
        ):
            raise ApiError(422, "invalid_input", '"priority" must be 0..9', field="priority")
        key = body.get("idempotency_key")
        if key is not None and (not isinstance(key, str) or not 0 < len(key) <= 200):
            raise ApiError(
                422,
                "invalid_input",
                '"idempotency_key" must be a short string',
                field="idempotency_key",
            )
        return cls(agent, raw_input, queue, priority, key)


def prepare(
    svc: Services,
    sub: Submission,
    owner: Principal,
    retry_of: str | None = None,
    before_send: Callable[[str], None] | None = None,
) -> Pending:
    """A submission checked (agent, input, queue) and made ready to store and send, or
    the contract's error (404 unknown agent, 422 bad input or queue)."""
    try:
        spec = get_agent(sub.agent)
    except UnknownAgent:
        raise ApiError(404, "unknown_agent", f"no agent named {sub.agent!r}") from None
    try:
        values = spec.validate(sub.input)
    except InputError as exc:
        raise ApiError(422, "invalid_input", str(exc), field=exc.field, errors=exc.errors) from None
    if sub.queue is not None:
        check_queue(svc, sub.queue)
    row: dict[str, Any] = dict(_EMPTY_ROW)
    row.update(
        id=str(uuid.uuid4()),
        name=RUN_AGENT_TASK,
        agent=sub.agent,
        state=JobState.PENDING.value,
        input=values,
        queue=sub.queue,
        priority=sub.priority,
        idempotency_key=sub.idempotency_key,
        retry_of=retry_of,
        owner_id=owner.user_id,
        created_at=time.time(),
    )
    soft, hard = spec.time_limits(svc.settings.run_time_limit)
    options: dict[str, Any] = {"soft_time_limit": soft, "time_limit": hard}
    if sub.queue:
        options["queue"] = sub.queue
    if sub.priority is not None:
        options["priority"] = sub.priority
    return Pending(row, RUN_AGENT_TASK, [sub.agent, values], options, before_send)


# Every column a new job's row sets, so that all rows of a batch have the same keys.
_EMPTY_ROW: dict[str, Any] = {
    **{c: None for c in ("args", "kwargs", "result", "error", "traceback", "worker")},
    **{c: None for c in ("parent_id", "root_id", "received_at", "started_at")},
    **{c: None for c in ("finished_at", "updated_at")},
    "retries": 0,
    "last_seq": 0,
    "run_no": 0,
}


def submit(
    svc: Services,
    sub: Submission,
    owner: Principal,
    retry_of: str | None = None,
    before_send: Callable[[str], None] | None = None,
) -> tuple[Job, bool]:
    """Store and send a job owned by `owner`; returns (job, created). An idempotency key
    the same owner used before returns the job it made, with created False."""
    item = prepare(svc, sub, owner, retry_of, before_send)
    svc.submitter.submit([item])
    if item.error is not None:
        raise item.error
    assert item.job is not None
    return item.job, item.created


def submit_many(svc: Services, bodies: list[Any], owner: Principal) -> list[Pending | ApiError]:
    """Each submission in `bodies` checked, and those that pass stored and sent together:
    for each, in order, what became of it (`Pending.job` or `.error`) or why it was
    refused."""
    out: list[Pending | ApiError] = []
    for body in bodies:
        try:
            out.append(prepare(svc, Submission.parse(body), owner))
        except ApiError as exc:
            out.append(exc)
    svc.submitter.submit([item for item in out if isinstance(item, Pending)])
    return out


def get_job(svc: Services, job_id: str, viewer: Principal) -> Job:
    """The job, if `viewer` may see it: another user's job is as missing as no job."""
    with svc.sessions() as s:
        job = s.get(Job, job_id)
    if job is None or not viewer.can_see(job.owner_id):
        raise ApiError(404, "not_found", f"no job {job_id!r}")
    return job


def get_changeable_job(svc: Services, job_id: str, actor: Principal) -> Job:
    """The job, if `actor` may cancel, retry or answer it (404 if unseen, 403 if read-only)."""
    job = get_job(svc, job_id, actor)
    if not actor.can_change(job.owner_id):
        raise ApiError(403, "forbidden", "you may not change this job")
    return job


def fresh_state(svc: Services, job: Job) -> Job:
    """The job as of its last event: the SQL row (detached) plus what the recorder has
    not stored yet, folded in from the replay log. Redis away: the row as it is."""
    return fresh_states(svc, [job])[0]


def fresh_states(svc: Services, jobs: list[Job]) -> list[Job]:
    """`fresh_state` for several rows, in one Redis round trip."""
    try:
        logs = read_logs(svc.redis, svc.settings.keys, [(j.id, j.last_seq) for j in jobs])
    except redis.RedisError:
        return jobs
    for job, (_, raws) in zip(jobs, logs, strict=True):
        for raw in raws:
            try:
                apply_event(job, decode(raw))
            except EnvelopeError:
                continue
    return jobs


def _encode_cursor(created_at: float, job_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([created_at, job_id]).encode()).decode()


def _decode_cursor(cursor: str) -> tuple[float, str]:
    try:
        created_at, job_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        if not math.isfinite(created_at := float(created_at)):
            raise ValueError("not a time")
        return created_at, str(job_id)
    except Exception:
        raise ApiError(400, "bad_cursor", "the cursor is not one this API gave out") from None


def list_jobs(svc: Services, args: dict[str, str], viewer: Principal) -> dict[str, Any]:
    limit = min(int_arg("limit", args.get("limit"), 50, 1, MAX_INT), MAX_PAGE)
    filters: list[Any] = []  # all but the state: the per-state counts follow them
    if (owner := viewer.visible_owner) is not None:
        filters.append(Job.owner_id == owner)
    if agent := args.get("agent"):
        filters.append(Job.agent == agent)
    if parent := args.get("parent"):
        filters.append(Job.parent_id == parent)
    if kind := args.get("kind"):
        if kind == "agent":
            filters.append(Job.agent.is_not(None))
        elif kind == "task":
            filters.append(Job.agent.is_(None))
    if q := args.get("q"):
        like = f"%{q}%"
        filters.append(
            or_(
                Job.id.like(like),
                Job.agent.like(like),
                Job.name.like(like),
                Job.args.like(like),
                Job.error.like(like),
            )
        )
    query = select(Job).where(*filters)
    if state := args.get("state"):
        states = [s.strip().upper() for s in state.split(",") if s.strip()]
        bad = [s for s in states if s not in JobState.__members__]
        if bad:
            raise ApiError(400, "bad_request", f"unknown state {bad[0]!r}")
        query = query.where(Job.state.in_(states))
    if cursor := args.get("cursor"):
        created_at, job_id = _decode_cursor(cursor)
        query = query.where(
            or_(Job.created_at < created_at, (Job.created_at == created_at) & (Job.id < job_id))
        )
    query = query.order_by(Job.created_at.desc(), Job.id.desc()).limit(limit + 1)
    with svc.sessions() as s:
        rows = list(s.scalars(query).all())
        counted = s.execute(select(Job.state, func.count()).where(*filters).group_by(Job.state))
        counts: dict[str, int] = {state: int(n) for state, n in counted.all()}
    more = len(rows) > limit
    # An unfinished row may lag its job by what the recorder has not stored yet; the
    # page that loads this list right after subscribing would miss those events.
    rows = rows[:limit]
    fresh_states(svc, [r for r in rows if not JobState(r.state).is_final])
    return {
        "jobs": [job_to_dict(r, viewer) for r in rows],
        "next_cursor": _encode_cursor(rows[-1].created_at, rows[-1].id) if more else None,
        "counts": {state.value: counts.get(state.value, 0) for state in JobState},
    }


def cancel(svc: Services, job_id: str, actor: Principal) -> Job:
    job = get_changeable_job(svc, job_id, actor)
    if JobState(fresh_state(svc, job).state) in FINAL_STATES:
        raise ApiError(409, "already_finished", f"job {job_id} is already {job.state}")
    _cancel(svc, job_id)
    return job


def _cancel(svc: Services, job_id: str) -> None:
    keys = svc.settings.keys
    svc.redis.set(keys.cancel(job_id), "1", ex=svc.settings.replay_ttl_seconds)
    if not waits.cancel_suspended(svc, job_id):
        # Not started yet: the worker drops it on receipt. Started: the agent sees
        # the flag at its next check; if it has not stopped soon, terminate it.
        revoke_task(svc, job_id)
        timer = threading.Timer(FORCE_CANCEL_AFTER, _force_cancel, args=(svc, job_id))
        timer.daemon = True
        timer.start()
    # A parent's children go with it.
    with svc.sessions() as s:
        open_children = s.scalars(
            select(Job.id).where(
                Job.parent_id == job_id, Job.state.not_in([st.value for st in FINAL_STATES])
            )
        ).all()
    for child in open_children:
        _cancel(svc, child)


def _force_cancel(svc: Services, job_id: str) -> None:
    _, live = head_of(svc.redis, svc.settings.keys, job_id)
    if live is not None and JobState(live) not in FINAL_STATES:
        revoke_task(svc, job_id, terminate=True, signal="SIGTERM")


def retry(svc: Services, job_id: str, actor: Principal, from_failure: bool = False) -> Job:
    """A new run of the same agent and input, owned by whoever asked for it: from the
    start, or (`from_failure`) replaying the old run's recorded steps up to the one that
    failed, which runs again."""
    old = get_changeable_job(svc, job_id, actor)
    if old.agent is None:
        raise ApiError(409, "not_an_agent_job", "only agent jobs can be retried here")

    def replay_old_steps(new_id: str) -> None:
        store.copy_until_failure(svc.sessions, old.id, new_id)

    job, _ = submit(
        svc,
        Submission(old.agent, old.input or {}, old.queue, old.priority),
        actor,
        retry_of=old.id,
        before_send=replay_old_steps if from_failure else None,
    )
    return job


def answer(svc: Services, job_id: str, body: Any, actor: Principal) -> Job:
    """Answer the job's open question: checked against its schema, then the run resumes."""
    job = fresh_state(svc, get_changeable_job(svc, job_id, actor))
    if not isinstance(body, dict) or "answer" not in body:
        raise ApiError(422, "invalid_input", 'the body must be {"answer": ...}', field="answer")
    waits.answer(svc, job_id, body["answer"], live_waiting=job.state == JobState.WAITING)
    return job
