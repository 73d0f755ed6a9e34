"""`ctx`, what an agent is given: steps, logs, output, progress, tools, questions."""

from __future__ import annotations

import json
import logging
import threading
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import redis

from workers.events import EventType
from workers.publisher import Publisher

CANCEL_CHECK_INTERVAL = 0.1


class JobCancelled(Exception):
    """Raised inside an agent when its job was cancelled."""


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

    def sleep(self, seconds: float) -> None:
        """Sleep in small slices, stopping at once if the job is cancelled."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            self.check_cancelled()
            time.sleep(min(left, CANCEL_CHECK_INTERVAL))
        self.check_cancelled()

    # -- a person in the loop -------------------------------------------------
    def ask(self, question: str, timeout: float = 3600.0) -> Any:
        """Ask a person; blocks (checking cancellation) until answered over REST."""
        self._emit(EventType.INPUT_REQUESTED, {"question": question})
        key = self.publisher.keys.answer(self.job_id)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.check_cancelled()
            got = self.redis.blpop([key], timeout=1)
            if got is not None:
                answer = json.loads(got[1])
                self._emit(EventType.INPUT_RECEIVED, {"answer": answer})
                return answer
        raise TimeoutError(f"no answer to {question!r} within {timeout}s")


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
