"""Flower's task API at Flower's paths, answered from SQL history and the broker_queues.

Reading is open like the rest of the REST API; running, revoking and
changing limits are admin-only. Unlike Flower, apply/send accept only task
names some worker (or this app) has registered.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import Any

from celery.result import AsyncResult
from flask import Blueprint, Response, jsonify, request
from sqlalchemy import select

from webapp.auth.guard import admin_required, current_principal, require_all_jobs
from webapp.errors import ApiError
from webapp.monitor import broker_queues, taskviews
from webapp.monitor.broadcasts import control, revoke_task
from webapp.monitor.taskcalls import async_apply, registered_names, wait_result
from webapp.monitor.worker_status import list_workers
from webapp.params import MAX_DURATION, float_arg
from webapp.services import services
from workers.models import Job

bp = Blueprint("flower_tasks", __name__, url_prefix="/api")

MAX_WAIT = 60.0


def json_ordered(pairs: list[tuple[str, Any]]) -> Response:
    return Response(json.dumps(OrderedDict(pairs), default=str), mimetype="application/json")


def _wait_arg(default: float) -> float:
    """`?timeout=`: seconds to wait for a result, at most MAX_WAIT (a request holds
    its connection and a Redis subscription meanwhile)."""
    seconds = float_arg("timeout", request.args.get("timeout"), default, 0, MAX_DURATION)
    return min(seconds, MAX_WAIT)


@bp.get("/tasks")
def list_tasks() -> Any:
    svc = services()
    owner = current_principal().visible_owner
    with svc.sessions() as s:
        rows, _ = taskviews.query(s, request.args.to_dict(), default_limit=None, owner=owner)
        return json_ordered([(r.id, taskviews.flower_task(r)) for r in rows])


@bp.get("/task/types")
@require_all_jobs
def task_types() -> Any:
    with services().sessions() as s:
        return jsonify({"task-types": taskviews.task_types(s)})


@bp.get("/queues/length")
@require_all_jobs
def queue_lengths() -> Any:
    svc = services()
    rows = broker_queues.queues(svc, list_workers(svc))
    return jsonify(
        {"active_queues": [{"name": q["name"], "messages": q["messages"]} for q in rows]}
    )


@bp.get("/task/info/<task_id>")
def task_info(task_id: str) -> Any:
    with services().sessions() as s:
        job = s.get(Job, task_id)
        if job is None or not current_principal().can_see(job.owner_id):
            raise ApiError(404, "not_found", f"Unknown task '{task_id}'")
        return jsonify(taskviews.flower_info(job, taskviews.children_of(s, task_id)))


def _check_visible(task_id: str) -> None:
    """404 for a task the caller may not see (those who see all may ask for any id)."""
    viewer = current_principal()
    if viewer.sees_all:
        return
    with services().sessions() as s:
        owner = s.scalar(select(Job.owner_id).where(Job.id == task_id))
    if owner is None or not viewer.can_see(owner):
        raise ApiError(404, "not_found", f"Unknown task '{task_id}'")


@bp.get("/task/result/<task_id>")
def task_result(task_id: str) -> Any:
    svc = services()
    _check_visible(task_id)
    timeout = _wait_arg(0.0) if request.args.get("timeout") else None
    result = AsyncResult(task_id, app=svc.celery)
    response: dict[str, Any] = {"task-id": task_id, "state": result.state}
    if timeout is not None:
        response.update(wait_result(result, timeout))
    elif result.ready():
        response.update(wait_result(result, 0.1))
    return jsonify(response)


@bp.post("/task/apply/<name>")
@admin_required
def apply(name: str) -> Any:
    timeout = _wait_arg(MAX_WAIT)  # before sending: a refused request sends nothing
    result = async_apply(services(), name)
    response: dict[str, Any] = {"task-id": result.id}
    response.update(wait_result(result, timeout))
    response["state"] = result.state
    return jsonify(response)


@bp.post("/task/async-apply/<name>")
@admin_required
def async_apply_view(name: str) -> Any:
    result = async_apply(services(), name)
    return jsonify({"task-id": result.id, "state": result.state})


@bp.post("/task/send-task/<name>")
@admin_required
def send_task(name: str) -> Any:
    result = async_apply(services(), name)
    return jsonify({"task-id": result.id, "state": result.state})


@bp.post("/task/revoke/<task_id>")
@admin_required
def revoke(task_id: str) -> Any:
    terminate = request.values.get("terminate", "").lower() in ("1", "true", "yes")
    signal = request.values.get("signal", "SIGTERM").upper()
    if not signal.startswith("SIG") or not signal[3:].isalpha():
        raise ApiError(400, "bad_request", '"signal" must be a signal name such as SIGTERM')
    revoke_task(services(), task_id, terminate=terminate, signal=signal)
    return jsonify({"message": f"Revoked '{task_id}'"})


@bp.post("/task/abort/<task_id>")
@admin_required
def abort(task_id: str) -> Any:
    from celery.contrib.abortable import AbortableAsyncResult

    AbortableAsyncResult(task_id, app=services().celery).abort()
    return jsonify({"message": f"Aborted '{task_id}'"})


def _limit_target(name: str) -> str | None:
    svc = services()
    if name not in registered_names(svc):
        raise ApiError(404, "unknown_task", f"Unknown task '{name}'")
    worker = request.values.get("workername") or None
    if worker is not None and worker not in {w["hostname"] for w in list_workers(svc)}:
        raise ApiError(404, "unknown_worker", f"Unknown worker '{worker}'")
    return worker


@bp.post("/task/rate-limit/<name>")
@admin_required
def rate_limit(name: str) -> Any:
    worker = _limit_target(name)
    value = request.values.get("ratelimit")
    if not value:
        raise ApiError(400, "bad_request", '"ratelimit" is required (e.g. 10/m)')
    reply = control(services(), "rate_limit", worker, {"task_name": name, "rate_limit": value})
    if "ok" not in reply:
        raise ApiError(403, "control_failed", f"Failed to set rate limit: {reply.get('error')}")
    return jsonify({"message": reply["ok"]})


@bp.post("/task/timeout/<name>")
@admin_required
def time_limit(name: str) -> Any:
    worker = _limit_target(name)
    limits: dict[str, float | None] = {}
    for key in ("soft", "hard"):
        limits[key] = float_arg(key, request.values.get(key), None, 0, MAX_DURATION)
    reply = control(services(), "time_limit", worker, {"task_name": name, **limits})
    if "ok" not in reply:
        raise ApiError(403, "control_failed", f"Failed to set timeouts: {reply.get('error')}")
    return jsonify({"message": reply["ok"]})
