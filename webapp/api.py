"""REST blueprint for agents and jobs (JSON in, JSON out, the contract's errors)."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, jsonify, request

from webapp import jobs
from webapp.auth.guard import current_principal, require
from webapp.auth.roles import Role
from webapp.body import json_body
from webapp.errors import ApiError
from webapp.params import MAX_INT, int_arg
from webapp.queues import queue_warnings
from webapp.replay import events_since
from webapp.services import services, text
from workers.durable.store import steps_of
from workers.runtime import load_agents

bp = Blueprint("api", __name__, url_prefix="/api")


@bp.get("/agents")
def list_agents() -> Any:
    registry = load_agents(services().settings.agent_modules)
    return jsonify({"agents": [spec.describe() for _, spec in sorted(registry.items())]})


@bp.post("/jobs")
@require(Role.OPERATOR)
def submit_job() -> Any:
    sub = jobs.Submission.parse(json_body())
    owner = current_principal()
    svc = services()
    job, created = jobs.submit(svc, sub, owner)
    body = jobs.job_to_dict(job, owner)
    body["warnings"] = queue_warnings(svc, job.queue) if created else []
    return jsonify(body), 202 if created else 200


@bp.post("/jobs/bulk")
@require(Role.OPERATOR)
def submit_jobs() -> Any:
    """`{"jobs": [submission, ...]}`: each checked, stored and sent on its own, answered
    in order with its job's id or its error (one refused item refuses no other)."""
    svc = services()
    body = json_body()
    if not isinstance(body, dict):
        raise ApiError(400, "bad_request", "the body must be a JSON object")
    items = body.get("jobs")
    if not isinstance(items, list) or not items:
        raise ApiError(422, "invalid_input", '"jobs" must be a non-empty list', field="jobs")
    limit = svc.settings.max_bulk_jobs
    if len(items) > limit:
        raise ApiError(
            413, "too_many_jobs", f"at most {limit} jobs in one request", field="jobs", limit=limit
        )
    owner = current_principal()
    results: list[dict[str, Any]] = []
    queues: dict[str | None, None] = {}
    for outcome in jobs.submit_many(svc, items, owner):
        error = outcome if isinstance(outcome, ApiError) else outcome.error
        if error is not None:
            err = {"code": error.code, "message": error.message, **error.extra}
            results.append({"status": error.status, "error": err})
            continue
        assert not isinstance(outcome, ApiError)
        if outcome.existing is not None:  # its idempotency key's first job
            job = outcome.existing
            results.append({"status": 200, "id": job.id, "state": job.state, "created": False})
            continue
        row = outcome.row  # no ORM object per job: the answer needs three columns
        queues[row["queue"]] = None
        results.append({"status": 202, "id": row["id"], "state": row["state"], "created": True})
    warnings = [w for queue in queues for w in queue_warnings(svc, queue)]
    created = sum(1 for r in results if r.get("created"))
    return jsonify(
        {
            "results": results,
            "created": created,
            "failed": sum(1 for r in results if "error" in r),
            "warnings": warnings,
        }
    )


@bp.get("/jobs")
def list_jobs() -> Any:
    return jsonify(jobs.list_jobs(services(), request.args.to_dict(), current_principal()))


@bp.get("/jobs/<job_id>")
def get_job(job_id: str) -> Any:
    svc = services()
    viewer = current_principal()
    job = jobs.fresh_state(svc, jobs.get_job(svc, job_id, viewer))
    body = jobs.job_to_dict(job, viewer)
    body["steps"] = steps_of(svc.sessions, job_id)  # recorded steps of a durable run
    return jsonify(body)


@bp.get("/jobs/<job_id>/events")
def job_events(job_id: str) -> Any:
    svc = services()
    since = int_arg("since", request.args.get("since"), 0, 0, MAX_INT)
    viewer = current_principal()
    if not viewer.sees_all:
        jobs.get_job(svc, job_id, viewer)  # 404 for a job this user may not see
    replay = events_since(svc.redis, svc.sessions, svc.settings.keys, job_id, since)
    if not replay.items and replay.head == 0:
        jobs.get_job(svc, job_id, viewer)  # 404 for a job nobody knows
    # Envelopes are stored as JSON text: splice them in as they are.
    epoch = svc.redis.get(svc.settings.keys.epoch)
    head = {
        "job": job_id,
        "head": replay.head,
        "complete": replay.complete,
        "epoch": text(epoch) if epoch else "",
    }
    body = json.dumps(head)[:-1] + ',"events":[' + ",".join(r for _, r in replay.items) + "]}"
    return Response(body, mimetype="application/json")


@bp.post("/jobs/<job_id>/cancel")
def cancel_job(job_id: str) -> Any:
    actor = current_principal()
    return jsonify(jobs.job_to_dict(jobs.cancel(services(), job_id, actor), actor)), 202


@bp.post("/jobs/<job_id>/retry")
def retry_job(job_id: str) -> Any:
    actor = current_principal()
    body = json_body() if request.content_length else {}
    start = body.get("from", "start") if isinstance(body, dict) else None
    if start not in ("start", "failure"):
        raise ApiError(422, "invalid_input", '"from" must be "start" or "failure"', field="from")
    svc = services()
    job = jobs.retry(svc, job_id, actor, from_failure=start == "failure")
    body = jobs.job_to_dict(job, actor)
    body["warnings"] = queue_warnings(svc, job.queue)
    return jsonify(body), 202


@bp.post("/jobs/<job_id>/input")
def answer_job(job_id: str) -> Any:
    actor = current_principal()
    job = jobs.answer(services(), job_id, json_body(), actor)
    return jsonify(jobs.job_to_dict(job, actor)), 202
