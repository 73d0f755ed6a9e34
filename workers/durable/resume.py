"""Ending a wait and queueing the run again: the one way a suspended run resumes.

Whoever ends a wait (the answer's web request; the janitor's waker for a due
sleep, a timed-out question or a parent whose children ended; a parent's own
run when its children ended while it suspended) calls `resume`: the store's
gate lets exactly one of them through, which says `input.received` /
`job.resumed` and sends the job's next run as a new Celery message.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import sessionmaker

from workers.durable import store
from workers.durable.replay import RecordedStep, StepStatus
from workers.events import EventType
from workers.models import Job
from workers.publisher import Publisher
from workers.runtime import RUN_AGENT_TASK, UnknownAgent, get_agent
from workers.settings import get_settings

SendTask = Callable[..., Any]


class NotSent(RuntimeError):
    """The wait was ended but the next run could not be sent (it is waiting again)."""


def resume(
    sessions: sessionmaker,
    publisher: Publisher,
    send: SendTask,
    job_id: str,
    step: RecordedStep,
    *,
    status: StepStatus = StepStatus.DONE,
    result: Any = None,
    error: str | None = None,
    reason: str,
) -> bool:
    """End `step`'s wait and queue the run; False if someone else ended it first."""
    run_no = store.resolve(sessions, job_id, step.idx, status, result=result, error=error)
    if run_no is None:
        return False
    with sessions() as s:
        job = s.get(Job, job_id)
    if job is not None:
        # Redis may have lost its data while the run waited (nothing of it was there but
        # its events): the seq goes on from SQL's history, not from 1 over it.
        publisher.remember(job_id, job.last_seq or 0, job.state)
    # Said (and in Redis) before the next run is sent, so they come before anything
    # that run says: job.resumed never moves a started run back to PENDING.
    if step.kind.value == "ask" and status is StepStatus.DONE:
        publisher.emit(job_id, EventType.INPUT_RECEIVED, {"answer": result, "step": step.idx})
    waited_ms = None
    if step.detail and isinstance(step.detail, dict) and step.detail.get("since"):
        waited_ms = round((time.time() - float(step.detail["since"])) * 1000, 1)
    publisher.emit(
        job_id,
        EventType.JOB_RESUMED,
        {"reason": reason, "step": step.idx, "waited_ms": waited_ms, "run": run_no},
        wait=True,
    )
    try:
        if job is None or job.agent is None:
            raise NotSent(f"job {job_id} has no agent row to run again")
        _send_run(send, job, run_no)
    except Exception as exc:
        store.unresolve(sessions, job_id, step.idx)
        publisher.emit(
            job_id,
            EventType.JOB_SUSPENDED,
            {"reason": reason, "step": step.idx, "until": step.wake_at, "again": True},
            wait=True,
        )
        raise NotSent(f"the run of {job_id} could not be queued again: {exc}") from exc
    return True


def _send_run(send: SendTask, job: Job, run_no: int) -> None:
    try:
        spec = get_agent(job.agent or "")
        soft, hard = spec.time_limits(get_settings().run_time_limit)
    except UnknownAgent:
        soft, hard = None, None
    options: dict[str, Any] = {"task_id": job.id, "kwargs": {"run": run_no}}
    if soft is not None:
        options.update(soft_time_limit=soft, time_limit=hard)
    if job.queue:
        options["queue"] = job.queue
    if job.priority is not None:
        options["priority"] = job.priority
    send(RUN_AGENT_TASK, args=[job.agent, job.input or {}], **options)
