"""The monitoring pages' own JSON API, under /api/monitor/ (Flower's API is separate)."""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, jsonify, request

from webapp.auth.guard import admin_required, current_principal, require_all_jobs
from webapp.errors import ApiError
from webapp.jobs import retry as retry_agent_job
from webapp.monitor import broker_queues, dashboard, taskviews, worker_status
from webapp.monitor.broadcasts import inspect_workers
from webapp.monitor.taskcalls import call_of, retry_task
from webapp.params import float_arg
from webapp.services import services
from workers.events import RETRYABLE_STATES
from workers.models import Job
from workers.redis_urls import without_credentials

bp = Blueprint("monitor_api", __name__, url_prefix="/api/monitor")

PAGE_MAX = 200


@bp.get("/whoami")
def whoami() -> Any:
    who = current_principal()
    return jsonify(
        {"admin": who.is_admin, "all_jobs": who.sees_all, "name": who.name, "role": who.role}
    )


@bp.get("/workers")
@require_all_jobs
def workers() -> Any:
    svc = services()
    return jsonify(
        {
            "workers": worker_status.list_workers(svc),
            "heartbeat_seconds": svc.settings.heartbeat_seconds,
            "expiry_seconds": svc.settings.worker_expiry_seconds,
        }
    )


@bp.get("/workers/<path:host>")
@require_all_jobs
def worker(host: str) -> Any:
    svc = services()
    found = worker_status.get_worker(svc, host)
    if found is None:
        raise ApiError(404, "unknown_worker", f"no worker {host!r}")
    if found["online"] and request.args.get("inspect", "1") != "0":
        found["inspect"] = inspect_workers(svc, [host]).get(host, {})
    return jsonify(found)


@bp.delete("/workers/<path:host>")
@admin_required
def purge(host: str) -> Any:
    if not worker_status.purge_worker(services(), host):
        raise ApiError(409, "not_offline", f"{host!r} is unknown or still online")
    return jsonify({"purged": host})


@bp.get("/broker")
@require_all_jobs
def broker_page() -> Any:
    svc = services()
    safe_url = without_credentials(str(svc.celery.conf.broker_url or ""))
    return jsonify(
        {
            "broker": safe_url,
            "queues": broker_queues.queues(svc, worker_status.list_workers(svc)),
            "ts": time.time(),
        }
    )


@bp.get("/dashboard")
@require_all_jobs
def dashboard_history() -> Any:
    # Up to a day is a window one may ask for; it is served as 10 s to the hour kept.
    window = float_arg("window", request.args.get("window"), 900.0, 0, 86_400)
    window = min(max(window, 10.0), 3600.0)
    return jsonify(
        {
            "sample_every": dashboard.SAMPLE_EVERY,
            "rate_window": dashboard.WINDOW,
            "samples": dashboard.history(services(), window),
        }
    )


def task_row(job: Job) -> dict[str, Any]:
    row = taskviews.flower_task(job)
    row["agent"] = job.agent
    row["queue_wait"] = (
        round(job.started_at - job.created_at, 6) if job.started_at and job.created_at else None
    )
    return row


@bp.get("/tasks")
@require_all_jobs
def tasks() -> Any:
    args = request.args.to_dict()
    until = taskviews.time_arg(args.get("until"), "until")
    if until is None:
        until = time.time()
    args["until"] = repr(until)
    limit = min(taskviews.int_arg(args, "limit", 50) or 50, PAGE_MAX)
    offset = taskviews.int_arg(args, "offset", 0)
    args["limit"] = str(limit)
    with services().sessions() as s:
        rows, total = taskviews.query(s, args, default_limit=limit, count=True)
        names = taskviews.task_types(s) if args.get("types") == "1" else None
        body: dict[str, Any] = {
            "tasks": [task_row(r) for r in rows],
            "total": total,
            "offset": offset,
            "limit": limit,
            "until": until,
        }
    if names is not None:
        body["types"] = names
    return jsonify(body)


@bp.get("/tasks/<task_id>")
@require_all_jobs
def task(task_id: str) -> Any:
    svc = services()
    with svc.sessions() as s:
        job = s.get(Job, task_id)
        if job is None:
            raise ApiError(404, "not_found", f"no task {task_id!r}")
        row = task_row(job)
        row["children"] = taskviews.children_of(s, task_id)
        row["retry_of"] = job.retry_of
        row["created_at"] = job.created_at
    row["retryable"] = job.state in RETRYABLE_STATES and (
        job.agent is not None or call_of(svc, task_id) is not None
    )
    return jsonify(row)


@bp.post("/tasks/<task_id>/retry")
@admin_required
def retry(task_id: str) -> Any:
    svc = services()
    with svc.sessions() as s:
        job = s.get(Job, task_id)
    if job is None:
        raise ApiError(404, "not_found", f"no task {task_id!r}")
    if job.agent is not None:
        new_id = retry_agent_job(svc, task_id, current_principal()).id
    else:
        new_id = retry_task(svc, job)
    return jsonify({"task-id": new_id, "retry_of": task_id}), 202
