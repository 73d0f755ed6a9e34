"""Celery signal receivers: every task transition becomes an event.

Receivers are module-level functions taking `**kwargs`. Celery's
`Signal.send` logs what a receiver raises (`logger.exception`, with the
receiver's name) and goes on with the task; tests call receivers directly.
Importing this module is all it takes to monitor any Celery app.
"""

from __future__ import annotations

import os
import time
from contextvars import ContextVar
from typing import Any

from celery import signals
from celery.exceptions import TimeLimitExceeded

from workers.callargs import call_args
from workers.events import EventType
from workers.publisher import get_publisher
from workers.runtime import RUN_AGENT_TASK
from workers.shared_counters import FAILED, RETRIED, SUCCEEDED
from workers.worker_stats import SENT_HEADER, STATS

MAX_REPR = 2_000
# Stamped on a request in the worker's main process; the pool child reads them.
RECEIVED_KEY = "agentdeck_received"  # when the worker received the task
SAID_KEY = "agentdeck_received_said"  # job.received already said (by the heartbeat)
FOLD_RECEIVED = 0.05  # a plain task started this soon after receipt gets no job.received
RECEIVED, STARTED = EventType.JOB_RECEIVED.value, EventType.JOB_STARTED.value
SUCCEEDED_EVENT = EventType.JOB_SUCCEEDED.value


# Set by a sender that publishes tasks in a batch (webapp/submitter.py): each job.queued
# is emitted without waiting, and the sender flushes the publisher once, before the
# batch reaches the broker.
queued_flushed_by_sender: ContextVar[bool] = ContextVar(
    "agentdeck_queued_flushed_by_sender", default=False
)


def _short(text: Any) -> str:
    s = text if isinstance(text, str) else repr(text)
    return s if len(s) <= MAX_REPR else s[:MAX_REPR] + "…"


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float, bool, list, dict)):
        return value
    return repr(value)


@signals.before_task_publish.connect
def on_before_task_publish(
    sender: str | None = None,
    body: Any = None,
    headers: dict[str, Any] | None = None,
    routing_key: str | None = None,
    **kwargs: Any,
) -> None:
    if headers is None:
        return
    headers[SENT_HEADER] = time.time()  # the worker measures the queue wait from it
    task_id = headers.get("id")
    if not task_id:
        return
    name = headers.get("task") or sender or ""
    data: dict[str, Any] = {
        "name": name,
        "args": _short(headers.get("argsrepr", "")),
        "kwargs": _short(headers.get("kwargsrepr", "")),
        "queue": routing_key,
        "retries": headers.get("retries") or 0,
        "eta": headers.get("eta"),
        "parent_id": headers.get("parent_id"),
        "root_id": headers.get("root_id"),
    }
    if name == RUN_AGENT_TASK and isinstance(body, (list, tuple)) and body:
        args = body[0] if body else []
        if len(args) >= 2:
            data["agent"], data["input"] = args[0], args[1]
    elif (call := call_args(body, headers)) is not None:
        data["call"] = call  # the real args, so a failed task can be retried
    # Waiting keeps job.queued first: the worker cannot see the task before
    # the broker has it, and the broker gets it only after this returns.
    wait = not queued_flushed_by_sender.get()
    get_publisher().emit(task_id, EventType.JOB_QUEUED, data, wait=wait)


@signals.task_received.connect
def on_task_received(request: Any = None, **kwargs: Any) -> None:
    STATS.count_received(request.name)
    # The worker's main process is its bottleneck, so it says nothing to Redis
    # here: it stamps the time on the request the pool child will get. The child
    # says job.received (with that time) just before job.started, in order; the
    # heartbeat says it for tasks still waiting in the prefetch buffer.
    request_dict = getattr(request, "_request_dict", None)
    if isinstance(request_dict, dict):
        request_dict.setdefault(RECEIVED_KEY, time.time())
    else:
        announce_received(request)


def announce_received(request: Any) -> None:
    """Say job.received for a request still waiting in the worker (once)."""
    request_dict = getattr(request, "_request_dict", None)
    if isinstance(request_dict, dict):
        if request_dict.get(SAID_KEY):
            return
        request_dict[SAID_KEY] = True
        ts = request_dict.get(RECEIVED_KEY)
    else:
        ts = None
    get_publisher().emit(
        request.id,
        EventType.JOB_RECEIVED,
        {"worker": request.hostname, "name": request.name},
        ts=ts if isinstance(ts, float) else None,
    )


_pid = os.getpid()


def _note_pid() -> None:
    global _pid
    _pid = os.getpid()


os.register_at_fork(after_in_child=_note_pid)


@signals.task_prerun.connect
def on_task_prerun(task_id: str | None = None, task: Any = None, **kwargs: Any) -> None:
    if task_id is None:
        return
    req = task.request
    stamped = vars(req)  # what the main process stamped (absent: not received here)
    received = stamped.get(RECEIVED_KEY)
    received = received if isinstance(received, float) else None
    started: dict[str, Any] = {"worker": req.hostname, "pid": _pid, "retries": req.retries or 0}
    publisher = get_publisher()
    now = time.time()
    # The note goes before the events: the publisher's thread applies notes when
    # it takes a batch, and the last one must not wait for an event after it.
    STATS.run_started(task_id, task.name, now, stamped.get(SENT_HEADER), received)
    if stamped.get(SAID_KEY):  # the heartbeat said job.received already
        pass
    elif received and task.name != RUN_AGENT_TASK and now - received < FOLD_RECEIVED:
        # A plain task that started at once: one event fewer per task (the
        # worker's throughput), the receipt time travels in job.started.
        started["received_at"] = received
    else:
        said = {"worker": req.hostname, "name": task.name}
        publisher.emit_plain(task_id, RECEIVED, said, ts=received)
    publisher.emit_plain(task_id, STARTED, started)


@signals.task_retry.connect
def on_task_retry(
    sender: Any = None, request: Any = None, reason: Any = None, **kwargs: Any
) -> None:
    STATS.run_ended(request.id, getattr(sender, "name", None) or request.task, RETRIED)
    get_publisher().emit(
        request.id,
        EventType.JOB_RETRYING,
        {"reason": _short(str(reason)), "retries": (request.retries or 0) + 1},
    )


@signals.task_success.connect
def on_task_success(sender: Any = None, result: Any = None, **kwargs: Any) -> None:
    task_id = sender.request.id
    STATS.run_ended(task_id, sender.name, SUCCEEDED)  # before the event (see prerun)
    value = _jsonable(result)
    if isinstance(value, (list, dict)):  # the task's own object: encode it now
        get_publisher().emit(task_id, EventType.JOB_SUCCEEDED, {"result": value})
    else:
        get_publisher().emit_plain(task_id, SUCCEEDED_EVENT, {"result": value})


def _error_text(exception: BaseException | None) -> str:
    if exception is None:
        return "unknown"
    if isinstance(exception, TimeLimitExceeded):  # the hard limit: the process was killed
        seconds = exception.args[0] if exception.args else None
        limit = f"{seconds:g} s" if isinstance(seconds, (int, float)) else "its hard limit"
        return (
            f"TimeLimitExceeded: time limit exceeded: still running after {limit}, "
            "the worker process running it was killed"
        )
    return f"{type(exception).__name__}: {exception}"


@signals.task_failure.connect
def on_task_failure(
    sender: Any = None,
    task_id: str | None = None,
    exception: BaseException | None = None,
    einfo: Any = None,
    **kwargs: Any,
) -> None:
    if task_id is None:
        return
    error = _error_text(exception)
    tb = str(einfo.traceback) if einfo is not None else ""
    STATS.run_ended(task_id, getattr(sender, "name", None) or "other", FAILED)
    get_publisher().emit(task_id, EventType.JOB_FAILED, {"error": error, "traceback": tb})


@signals.task_revoked.connect
def on_task_revoked(
    sender: Any = None,
    request: Any = None,
    terminated: bool = False,
    signum: Any = None,
    expired: bool = False,
    **kwargs: Any,
) -> None:
    STATS.count_revoked(getattr(sender, "name", None) or getattr(request, "task", None) or "other")
    reason = "expired" if expired else ("terminated" if terminated else "revoked")
    data: dict[str, Any] = {"reason": reason, "signal": _jsonable(signum)}
    # A task revoked before any worker received it has no job.received: the worker
    # that revoked it is its worker (Flower lists it under that worker too).
    if hostname := getattr(request, "hostname", None):
        data["worker"] = hostname
    get_publisher().emit(request.id, EventType.JOB_CANCELLED, data)


@signals.worker_shutdown.connect
def on_worker_shutdown(**kwargs: Any) -> None:
    get_publisher().flush(timeout=5.0)


@signals.worker_process_shutdown.connect
def on_worker_process_shutdown(**kwargs: Any) -> None:
    get_publisher().flush(timeout=5.0)
