"""The web's side of durable runs: answers, due sleeps and timeouts, children that
ended, cancelling a suspended job (see workers/durable).

Every way a wait ends goes through `workers.durable.resume.resume`, whose gate
lets exactly one of them queue the next run.
"""

from __future__ import annotations

import logging
import time
from functools import partial
from typing import Any

import jsonschema

from webapp.broker_pool import send_task
from webapp.errors import ApiError
from webapp.services import Services
from workers.durable import children, store
from workers.durable.replay import RecordedStep, StepKind, StepStatus
from workers.durable.resume import NotSent, resume
from workers.events import EventType
from workers.hooks import Hook
from workers.models import Job
from workers.publisher import get_publisher

log = logging.getLogger("agentdeck.waits")

SUSPENDING_GRACE = 2.0  # seconds an answer waits for a run that is saying it suspends
PARENTS_PER_TICK = 200  # waiting parents looked at per janitor tick (1 s), page by page


def _send(svc: Services) -> Any:
    return partial(send_task, svc.celery)


def waiting_question(svc: Services, job_id: str, live_waiting: bool) -> RecordedStep:
    """The job's open question; a run that said `input.requested` records it a moment
    later, so while the live state says WAITING the answer waits that moment."""
    deadline = time.monotonic() + (SUSPENDING_GRACE if live_waiting else 0)
    while True:
        step = store.waiting_step(svc.sessions, job_id)
        if step is not None or time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    if step is None or step.kind is not StepKind.ASK:
        raise ApiError(409, "not_waiting", f"job {job_id} is not waiting for input")
    return step


def check_answer(step: RecordedStep, answer: Any) -> None:
    """422 at the field when the answer does not fit the question's schema."""
    schema = (step.detail or {}).get("schema") if isinstance(step.detail, dict) else None
    if not schema:
        return
    errors = sorted(
        jsonschema.Draft202012Validator(schema).iter_errors(answer), key=lambda e: list(e.path)
    )
    if errors:
        first = errors[0]
        where = ".".join(str(p) for p in first.absolute_path)
        field = f"answer.{where}" if where else "answer"
        raise ApiError(
            422,
            "invalid_input",
            f"{field}: {first.message}",
            field=field,
            errors=[
                {"field": ".".join(["answer", *map(str, e.absolute_path)]), "message": e.message}
                for e in errors
            ],
        )


def answer(svc: Services, job_id: str, value: Any, live_waiting: bool) -> None:
    step = waiting_question(svc, job_id, live_waiting)
    check_answer(step, value)
    try:
        ended = resume(
            svc.sessions, get_publisher(), _send(svc), job_id, step, result=value, reason="input"
        )
    except NotSent as exc:
        raise ApiError(503, "broker_unavailable", str(exc)) from None
    if not ended:
        raise ApiError(409, "not_waiting", f"job {job_id} was answered already")


def cancel_suspended(svc: Services, job_id: str) -> bool:
    """Cancel a suspended job: its wait ends as cancelled and nothing resumes it."""
    step = store.waiting_step(svc.sessions, job_id)
    if step is None:
        return False
    if store.resolve(svc.sessions, job_id, step.idx, StepStatus.CANCELLED) is None:
        return False
    with svc.sessions() as s:
        row = s.get(Job, job_id)
    if row is not None:  # as in `resume`: after a loss of Redis' data, seq goes on from SQL
        get_publisher().remember(job_id, row.last_seq or 0, row.state)
    get_publisher().emit(
        job_id, EventType.JOB_CANCELLED, {"reason": "cancelled while waiting"}, wait=True
    )
    return True


class Waker(Hook):
    """On the janitor's tick: sleeps whose time has come, questions past their timeout,
    and runs whose children have all ended are resumed."""

    def __init__(self, svc: Services) -> None:
        self.svc = svc
        self._parents_after = ""  # where the last tick's page of waiting parents ended

    def every_tick(self) -> None:
        svc = self.svc
        for job_id, step in store.due(svc.sessions, time.time()):
            if step.kind is StepKind.SLEEP:
                self._resume(job_id, step, StepStatus.DONE, None, None, "sleep")
            else:
                error = f"no answer to {step.name!r} within its timeout"
                self._resume(job_id, step, StepStatus.FAILED, None, error, "timeout")
        page = store.waiting_for_children(svc.sessions, self._parents_after, PARENTS_PER_TICK)
        self._parents_after = page[-1][0] if len(page) == PARENTS_PER_TICK else ""
        for job_id, step in page:
            ids = list((step.detail or {}).get("children") or [])
            done = children.outcomes(svc.sessions, ids)
            if done is None:
                continue
            failed = [c for c in done if c.state != "SUCCESS"]
            if failed:
                why = f"child job {failed[0].id} ended {failed[0].state}: {failed[0].error}"
                self._resume(job_id, step, StepStatus.FAILED, None, why, "children")
            else:
                results = [c.result for c in done]
                self._resume(job_id, step, StepStatus.DONE, results, None, "children")

    def _resume(
        self,
        job_id: str,
        step: RecordedStep,
        status: StepStatus,
        result: Any,
        error: str | None,
        reason: str,
    ) -> None:
        try:
            resume(
                self.svc.sessions, get_publisher(), _send(self.svc), job_id, step,
                status=status, result=result, error=error, reason=reason,
            )  # fmt: skip
        except NotSent as exc:
            log.warning("%s; trying again on the next tick", exc)
