"""What `ctx.run`, `ctx.run_tool`, `ctx.ask`, `ctx.sleep_until`, `ctx.spawn` and `ctx.wait`
do: replay a recorded step, or run it and record it, or suspend the run.

A step's result is kept as JSON, and the first run gets the same JSON value
back as every replay will (a tuple comes back a list), so the agent's code
sees the same thing either way. Every step event says `replayed` and its
`step` index.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis
from celery.exceptions import SoftTimeLimitExceeded
from pydantic import BaseModel
from sqlalchemy.orm import sessionmaker

from workers.durable import children, store
from workers.durable.replay import (
    JobCancelled,
    RecordedStep,
    Replay,
    StepFailed,
    StepKind,
    StepStatus,
)
from workers.events import EventType
from workers.publisher import Publisher


class Suspended(BaseException):  # noqa: N818 (not an error: the run's way out while it waits)
    """Ends this run while it waits; a BaseException so `except Exception` lets it by."""

    def __init__(self, reason: str, step: int) -> None:
        super().__init__(f"suspended at step {step} ({reason})")
        self.reason = reason
        self.step = step


class ChildFailed(RuntimeError):
    """A child job the run waited for did not succeed."""


class Cancelled(BaseException):  # noqa: N818
    """The job was cancelled while it waited (the context turns it into JobCancelled)."""


def as_json(value: Any, what: str) -> Any:
    """`value` as its JSON round trip; a clear error for what JSON cannot hold."""
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError) as exc:
        message = f"{what} must be JSON (a dict, list, str, number, bool or None): {exc}"
        raise TypeError(message) from None


@dataclass
class DurableRun:
    job_id: str
    parent: children.Parent
    sessions: sessionmaker
    publisher: Publisher
    redis: redis.Redis
    send: Callable[..., Any]
    replay: Replay

    def _emit(self, type_: EventType, data: dict[str, Any], wait: bool = False) -> None:
        self.publisher.emit(self.job_id, type_, data, wait=wait)

    def _record(self, step: RecordedStep, started_at: float) -> RecordedStep:
        kept = store.record(self.sessions, self.job_id, step, started_at)
        self.replay.remember(kept)
        return kept

    # -- recorded work -------------------------------------------------------------------
    def run(self, name: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        idx, found = self.replay.next(name, StepKind.RUN)
        if found is not None:
            self._emit(EventType.STEP_STARTED, {"name": name, "step": idx, "replayed": True})
            self._emit(EventType.STEP_FINISHED, _finished(name, idx, found, replayed=True))
            return _outcome(found)
        self._emit(EventType.STEP_STARTED, {"name": name, "step": idx, "replayed": False})
        try:
            kept = self._run_and_record(idx, name, StepKind.RUN, fn, args, kwargs)
        except Exception as exc:
            failed = {"name": name, "step": idx, "replayed": False, "error": _error(exc)}
            self._emit(EventType.STEP_FINISHED, failed)
            raise
        self._emit(EventType.STEP_FINISHED, _finished(name, idx, kept, replayed=False))
        return _outcome(kept)

    def run_tool(self, tool: str, fn: Callable[..., Any], args: dict[str, Any]) -> Any:
        idx, found = self.replay.next(tool, StepKind.TOOL)
        called = {"tool": tool, "args": as_json(args, "tool arguments"), "step": idx}
        if found is not None:
            self._emit(EventType.TOOL_CALLED, {**called, "replayed": True})
            self._emit(EventType.TOOL_RETURNED, _returned(tool, idx, found, replayed=True))
            return _outcome(found)
        self._emit(EventType.TOOL_CALLED, {**called, "replayed": False})
        try:
            kept = self._run_and_record(idx, tool, StepKind.TOOL, fn, (), args)
        except Exception as exc:
            failed = {"tool": tool, "result": None, "step": idx, "replayed": False}
            self._emit(EventType.TOOL_RETURNED, {**failed, "error": _error(exc)})
            raise
        self._emit(EventType.TOOL_RETURNED, _returned(tool, idx, kept, replayed=False))
        return _outcome(kept)

    def _run_and_record(
        self,
        idx: int,
        name: str,
        kind: StepKind,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> RecordedStep:
        started = time.time()
        try:
            result = as_json(fn(*args, **kwargs), f"the result of step {name!r}")
        except (JobCancelled, SoftTimeLimitExceeded):
            raise  # the run's end, not the step's outcome: nothing recorded
        except Exception as exc:
            failed = RecordedStep(idx, name, kind, StepStatus.FAILED, error=_error(exc))
            self._record(failed, started)
            raise StepFailed(failed.error) from exc
        return self._record(RecordedStep(idx, name, kind, StepStatus.DONE, result), started)

    # -- waits ---------------------------------------------------------------------------
    def ask(self, question: str, schema: dict[str, Any] | None, timeout: float | None) -> Any:
        idx, found = self.replay.next(question[:255], StepKind.ASK)
        if found is None:
            detail = {"question": question, "schema": schema, "since": time.time()}
            self._emit(
                EventType.INPUT_REQUESTED,
                {"question": question, "schema": schema, "step": idx, "timeout": timeout},
            )
            wake = time.time() + timeout if timeout else None
            self._suspend(idx, question[:255], StepKind.ASK, "input", detail, wake)
        assert found is not None
        self._wait_over_or_suspend(found, "input")
        return found.result

    def sleep_until(self, until: float) -> None:
        idx, found = self.replay.next("sleep", StepKind.SLEEP)
        if found is None:
            if until <= time.time():
                self._record(
                    RecordedStep(idx, "sleep", StepKind.SLEEP, StepStatus.DONE), time.time()
                )
                return
            detail = {"until": until, "since": time.time()}
            self._suspend(idx, "sleep", StepKind.SLEEP, "sleep", detail, until)
        assert found is not None
        self._wait_over_or_suspend(found, "sleep")

    def spawn(self, agent: str, input: dict[str, Any]) -> str:
        name = f"spawn {agent}"
        idx, found = self.replay.next(name, StepKind.SPAWN)
        if found is not None:
            return str(_outcome(found))
        started = time.time()
        child = children.spawn(
            self.sessions, self.redis, self.publisher.keys, self.send,
            self.parent, idx, agent, input,
        )  # fmt: skip
        self._record(RecordedStep(idx, name, StepKind.SPAWN, StepStatus.DONE, child), started)
        self._emit(EventType.CHILD_SPAWNED, {"child": child, "agent": agent, "step": idx})
        return child

    def wait(self, ids: list[str]) -> list[Any]:
        idx, found = self.replay.next("wait", StepKind.WAIT)
        if found is None:
            started = time.time()
            done = children.outcomes(self.sessions, ids)
            if done is not None:
                found = self._record(_children_step(idx, done), started)
            else:
                detail = {"children": ids, "since": started}
                self._suspend(idx, "wait", StepKind.WAIT, "children", detail, None, ids)
        assert found is not None
        self._wait_over_or_suspend(found, "children")
        return list(found.result or [])

    def _wait_over_or_suspend(self, found: RecordedStep, reason: str) -> None:
        """A recorded wait: over (go on, or raise its failure), or still waiting (a
        redelivered message of the suspended run: suspend again)."""
        if found.status is StepStatus.WAITING:
            raise Suspended(reason, found.idx)
        if found.status is StepStatus.CANCELLED:
            raise Cancelled(self.job_id)
        if found.status is StepStatus.FAILED:
            if found.kind is StepKind.WAIT:
                raise ChildFailed(found.error)
            if found.kind is StepKind.ASK:
                raise TimeoutError(found.error)
            raise StepFailed(found.error)

    def _suspend(
        self,
        idx: int,
        name: str,
        kind: StepKind,
        reason: str,
        detail: dict[str, Any],
        wake_at: float | None,
        child_ids: list[str] | None = None,
    ) -> None:
        # Said before the wait is recorded (and answerable), so that `job.suspended`
        # always comes before the `job.resumed` of whoever ends the wait.
        self._emit(
            EventType.JOB_SUSPENDED,
            {"reason": reason, "step": idx, "until": wake_at if kind is StepKind.SLEEP else None},
            wait=True,
        )
        step = RecordedStep(idx, name, kind, StepStatus.WAITING, detail=detail, wake_at=wake_at)
        self._record(step, time.time())
        if child_ids is not None:
            # A child that ended between the check and the record would wake nobody.
            done = children.outcomes(self.sessions, child_ids)
            if done is not None:
                outcome = _children_step(idx, done)
                from workers.durable.resume import resume

                resume(
                    self.sessions, self.publisher, self.send, self.job_id, step,
                    status=outcome.status, result=outcome.result, error=outcome.error,
                    reason="children",
                )  # fmt: skip
        raise Suspended(reason, idx)


def _children_step(idx: int, done: list[children.ChildOutcome]) -> RecordedStep:
    failed = [c for c in done if c.state != "SUCCESS"]
    if failed:
        first = failed[0]
        error = f"child job {first.id} ended {first.state}: {first.error or 'no error given'}"
        return RecordedStep(idx, "wait", StepKind.WAIT, StepStatus.FAILED, error=error)
    results = [c.result for c in done]
    return RecordedStep(idx, "wait", StepKind.WAIT, StepStatus.DONE, results)


def _outcome(step: RecordedStep) -> Any:
    if step.status is StepStatus.FAILED:
        raise StepFailed(step.error)
    return step.result


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _finished(name: str, idx: int, step: RecordedStep, *, replayed: bool) -> dict[str, Any]:
    data: dict[str, Any] = {"name": name, "step": idx, "replayed": replayed}
    if step.status is StepStatus.FAILED:
        data["error"] = step.error
    return data


def _returned(tool: str, idx: int, step: RecordedStep, *, replayed: bool) -> dict[str, Any]:
    data: dict[str, Any] = {"tool": tool, "result": step.result, "step": idx, "replayed": replayed}
    if step.status is StepStatus.FAILED:
        data["error"] = step.error
    return data


def model_schema(schema: type[BaseModel] | dict[str, Any] | None) -> dict[str, Any] | None:
    """The JSON Schema of an answer: given as one, or a pydantic model's."""
    if schema is None:
        return None
    if isinstance(schema, dict):
        return schema
    if isinstance(schema, type) and issubclass(schema, BaseModel):
        return schema.model_json_schema()
    raise TypeError("schema= takes a JSON Schema (a dict) or a pydantic model class")
