"""`ctx`, what an agent is given: steps, logs, output, progress, tools, questions."""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import redis
from pydantic import BaseModel

from workers.durable.replay import JobCancelled
from workers.durable.runner import Cancelled, DurableRun, model_schema
from workers.events import EventType
from workers.publisher import Publisher

CANCEL_CHECK_INTERVAL = 0.1
SUSPEND_SLEEPS_FROM = 10.0  # seconds: a sleep this long frees the worker
T = TypeVar("T")


@dataclass
class ToolCall:
    name: str
    args: dict[str, Any]
    result: Any = None

    def returned(self, result: Any) -> Any:
        self.result = result
        return result


@dataclass
class Context:
    job_id: str
    agent: str
    publisher: Publisher
    redis: redis.Redis
    durable: DurableRun | None = None
    _last_check: float = 0.0
    _cancelled: bool = False
    _steps: list[str] = field(default_factory=list)

    def _emit(self, type_: EventType, data: dict[str, Any]) -> None:
        self.publisher.emit(self.job_id, type_, data)

    # -- structure ------------------------------------------------------------
    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        """A named step: `step.started`, then `step.finished` with its duration and error."""
        self.check_cancelled()
        self._emit(EventType.STEP_STARTED, {"name": name})
        started = time.perf_counter()
        try:
            yield
        except BaseException as exc:
            self._emit(
                EventType.STEP_FINISHED,
                {
                    "name": name,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 3),
                    "error": f"{type(exc).__name__}: {exc}",
                },
            )
            raise
        self._emit(
            EventType.STEP_FINISHED,
            {"name": name, "duration_ms": round((time.perf_counter() - started) * 1000, 3)},
        )

    def log(self, message: str, level: str = "info") -> None:
        self._emit(EventType.LOG, {"level": level.lower(), "message": str(message)})

    def output(self, text: str) -> None:
        """One chunk of streamed output."""
        self._emit(EventType.OUTPUT, {"text": str(text)})

    def progress(self, done: float, total: float) -> None:
        self._emit(EventType.PROGRESS, {"done": done, "total": total})

    @contextmanager
    def tool(self, name: str, args: dict[str, Any] | None = None) -> Iterator[ToolCall]:
        """`with ctx.tool("search", {"q": q}) as call: call.returned(result)`."""
        call = ToolCall(name, dict(args or {}))
        self._emit(EventType.TOOL_CALLED, {"tool": name, "args": call.args})
        try:
            yield call
        except BaseException as exc:
            self._emit(
                EventType.TOOL_RETURNED,
                {"tool": name, "result": None, "error": f"{type(exc).__name__}: {exc}"},
            )
            raise
        self._emit(EventType.TOOL_RETURNED, {"tool": name, "result": call.result})

    # -- cancellation ---------------------------------------------------------
    @property
    def cancelled(self) -> bool:
        """True once the job was cancelled (checked in Redis at most every 0.1 s)."""
        if not self._cancelled:
            t = time.monotonic()
            if t - self._last_check >= CANCEL_CHECK_INTERVAL:
                self._last_check = t
                try:
                    key = self.publisher.keys.cancel(self.job_id)
                    self._cancelled = bool(self.redis.exists(key))
                except redis.RedisError:
                    pass  # Redis away: keep running, check again later
        return self._cancelled

    def check_cancelled(self) -> None:
        if self.cancelled:
            raise JobCancelled(self.job_id)

    def sleep(self, seconds: float, suspend: bool | None = None) -> None:
        """Sleep, stopping at once if the job is cancelled. From `SUSPEND_SLEEPS_FROM`
        seconds on (or with `suspend=True`) the run is suspended instead, freeing its
        worker (see `sleep_until`); `suspend=False` always sleeps on the worker."""
        if suspend is None:
            suspend = seconds >= SUSPEND_SLEEPS_FROM
        if suspend and self.durable is not None:
            self.sleep_until(time.time() + seconds)
            return
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            self.check_cancelled()
            time.sleep(min(left, CANCEL_CHECK_INTERVAL))
        self.check_cancelled()

    # -- durable steps: recorded, replayed, suspended (workers/durable) -----------------
    def _run(self) -> DurableRun:
        if self.durable is None:
            raise RuntimeError("recorded steps and waits need a job run by agentdeck.run_agent")
        return self.durable

    def run(self, name: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run `fn(*args, **kwargs)` once: its JSON result (or its error) is recorded, and
        every later execution of this run returns it without calling `fn` again."""
        self.check_cancelled()
        return cast(T, self._run().run(name, fn, *args, **kwargs))

    def run_tool(self, tool: str, fn: Callable[..., T], **args: Any) -> T:
        """A recorded tool call: `tool.called` / `tool.returned`, run once like `run`."""
        self.check_cancelled()
        return cast(T, self._run().run_tool(tool, fn, args))

    def ask(
        self,
        question: str,
        schema: type[BaseModel] | dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> Any:
        """Ask a person. The run is suspended (its worker takes other jobs) until the
        answer comes over `POST /api/jobs/<id>/input`, validated against `schema` (a JSON
        Schema or a pydantic model, whose instance is returned); then it resumes here.
        With `timeout` (seconds), no answer by then raises TimeoutError."""
        self.check_cancelled()
        try:
            answer = self._run().ask(question, model_schema(schema), timeout)
        except Cancelled:
            raise JobCancelled(self.job_id) from None
        if isinstance(schema, type) and issubclass(schema, BaseModel):
            return schema.model_validate(answer)
        return answer

    def sleep_until(self, until: float) -> None:
        """Suspend the run until the time `until` (seconds since the epoch)."""
        self.check_cancelled()
        try:
            self._run().sleep_until(until)
        except Cancelled:
            raise JobCancelled(self.job_id) from None

    def spawn(self, agent: str, input: dict[str, Any] | None = None) -> str:
        """Submit a child job (its `parent_id` is this job); its id. Made once per run."""
        self.check_cancelled()
        return self._run().spawn(agent, dict(input or {}))

    def wait(self, children: str | list[str]) -> Any:
        """Suspend until the child jobs have ended; their results, in order (one id: its
        result). A child that did not succeed raises ChildFailed naming it."""
        self.check_cancelled()
        ids = [children] if isinstance(children, str) else list(children)
        try:
            results = self._run().wait(ids)
        except Cancelled:
            raise JobCancelled(self.job_id) from None
        return results[0] if isinstance(children, str) else results


class AgentLogHandler(logging.Handler):
    """Turns `logging` records made on the agent's thread into `log` events."""

    IGNORED = ("celery", "kombu", "agentdeck", "amqp", "redis")

    def __init__(self, ctx: Context) -> None:
        super().__init__(logging.DEBUG)
        self.ctx = ctx
        self.thread = threading.get_ident()

    def emit(self, record: logging.LogRecord) -> None:
        if threading.get_ident() != self.thread or record.name.startswith(self.IGNORED):
            return
        try:
            message = record.getMessage()
            if record.exc_info:
                message += "\n" + "".join(traceback.format_exception(*record.exc_info))
            self.ctx.log(message, record.levelname)
        except Exception:
            self.handleError(record)
