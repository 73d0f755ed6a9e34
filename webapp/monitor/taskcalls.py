"""Sending tasks by name (Flower's apply/send) and retrying a failed one."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from celery.result import AsyncResult
from sqlalchemy import select

from webapp.body import json_body
from webapp.broker_pool import send_task
from webapp.errors import ApiError
from webapp.monitor.worker_status import list_workers
from webapp.params import MAX_DURATION, json_float, json_int
from webapp.queues import check_queue
from webapp.services import Services
from workers.events import RETRYABLE_STATES, EventType, JobState
from workers.models import EventRow, Job
from workers.replay_log import first_entries

DATE_FORMAT = "%Y-%m-%d %H:%M:%S.%f"
OPTIONS = ("countdown", "eta", "expires", "queue", "priority", "routing_key", "exchange")
MAX_PRIORITY = 255  # AMQP's; the Redis transport maps it onto its own steps


def registered_names(svc: Services) -> set[str]:
    """Task names this app knows plus those any known worker has registered."""
    names = {n for n in svc.celery.tasks if not n.startswith("celery.")}
    for w in list_workers(svc):
        names.update(w["info"].get("registered") or [])
    return names


def _expires(value: Any) -> float | datetime:
    """Flower's `expires`: seconds from now, or a date in DATE_FORMAT."""
    if isinstance(value, str):
        try:
            return datetime.strptime(value, DATE_FORMAT)
        except ValueError:
            pass  # then it must be a number of seconds
    return json_float("expires", value, 0, MAX_DURATION)


def _body() -> tuple[list[Any], dict[str, Any], dict[str, Any]]:
    body = json_body(required=False)
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise ApiError(400, "bad_request", "the body must be a JSON object")
    args = body.pop("args", [])
    kwargs = body.pop("kwargs", {})
    if not isinstance(args, list):
        raise ApiError(400, "bad_request", "args must be an array")
    if not isinstance(kwargs, dict):
        raise ApiError(400, "bad_request", "kwargs must be an object")
    unknown = sorted(set(body) - set(OPTIONS))
    if unknown:
        raise ApiError(400, "bad_request", f"unknown option {unknown[0]!r}")
    options = dict(body)
    for name in ("queue", "routing_key", "exchange"):
        if name in options and not isinstance(options[name], str):
            raise ApiError(400, "bad_request", f'"{name}" must be a string', field=name)
    if "eta" in options:
        try:
            options["eta"] = datetime.strptime(str(options["eta"]), DATE_FORMAT)
        except ValueError:
            raise ApiError(
                400, "bad_request", f'"eta" must look like {DATE_FORMAT}', field="eta"
            ) from None
    if "countdown" in options:
        options["countdown"] = json_float("countdown", options["countdown"], 0, MAX_DURATION)
    if "expires" in options:
        options["expires"] = _expires(options["expires"])
    if "priority" in options:
        options["priority"] = json_int("priority", options["priority"], 0, MAX_PRIORITY)
    return args, kwargs, options


def queue_for(svc: Services, name: str) -> str | None:
    """A queue consumed by an online worker that registered `name` (None: the default).

    The web app does not know another app's routes; a task it does not know
    itself goes where a worker that can run it listens."""
    if name in svc.celery.tasks:
        return None
    for w in list_workers(svc):
        queues = w["info"].get("queues") or []
        if w["online"] and queues and name in (w["info"].get("registered") or []):
            return str(queues[0])
    return None


def _check_route(svc: Services, options: dict[str, Any]) -> None:
    """Where the message goes must be an allowed queue: `routing_key` is one too (on the
    default exchange it names the queue), and only Celery's default exchange is taken."""
    for field in ("queue", "routing_key"):
        if field in options:
            check_queue(svc, options[field], field)
    default = svc.celery.conf.task_default_exchange
    if options.get("exchange", default) != default:
        raise ApiError(422, "invalid_input", f'"exchange" must be {default!r}', field="exchange")


def async_apply(svc: Services, name: str) -> AsyncResult:
    if name not in registered_names(svc):
        raise ApiError(404, "unknown_task", f"Unknown task '{name}'")
    args, kwargs, options = _body()
    if "queue" not in options and (queue := queue_for(svc, name)):
        options["queue"] = queue
    _check_route(svc, options)
    return send_task(svc.celery, name, args=args, kwargs=kwargs, **options)


def _safe(value: Any) -> Any:
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return repr(value)


def wait_result(result: AsyncResult, timeout: float) -> dict[str, Any]:
    """{"result", "traceback"?} once ready within `timeout`, else {}."""
    try:
        result.get(timeout=timeout, propagate=False)
    except Exception:  # a timeout: not ready yet
        return {}
    out: dict[str, Any] = {"result": _safe(result.result)}
    if result.state == JobState.FAILURE:
        out["result"] = repr(result.result)
        out["traceback"] = result.traceback
    return out


def call_of(svc: Services, job_id: str) -> dict[str, Any] | None:
    """The task's real args and kwargs, kept by job.queued (`call`) when they were small."""
    with svc.sessions() as s:
        data = s.scalar(
            select(EventRow.data)
            .where(EventRow.job_id == job_id, EventRow.type == EventType.JOB_QUEUED.value)
            .order_by(EventRow.seq)
            .limit(1)
        )
    if data is None:  # not recorded yet: the replay log has it
        for raw in first_entries(svc.redis, svc.settings.keys, job_id, 5):
            event = json.loads(raw)
            if event.get("type") == EventType.JOB_QUEUED.value:
                data = event.get("data")
                break
    call = (data or {}).get("call")
    return call if isinstance(call, dict) else None


def retry_task(svc: Services, job: Job) -> str:
    """Send a failed (or revoked) plain task again: same name, args, kwargs and queue."""
    if job.state not in RETRYABLE_STATES:
        raise ApiError(
            409, "not_failed", f"only failed or revoked tasks can be retried ({job.state})"
        )
    call = call_of(svc, job.id)
    if call is None or not job.name:
        raise ApiError(409, "args_unknown", "this task's arguments were not recorded (too large?)")
    new_id = str(uuid.uuid4())
    options: dict[str, Any] = {"task_id": new_id}
    if job.queue:
        options["queue"] = check_queue(svc, job.queue)
    send_task(
        svc.celery,
        job.name,
        args=tuple(call.get("args") or ()),
        kwargs=call.get("kwargs") or {},
        **options,
    )
    return new_id
