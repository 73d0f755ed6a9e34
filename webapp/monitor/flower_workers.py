"""Flower's worker API: `GET /api/workers` and the `POST /api/worker/...` controls.

Same paths, parameters and bodies as Flower (`{"message": ...}` on success).
Errors use Agentdeck's JSON error shape. Every control is admin-only.
"""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, jsonify, request

from webapp.auth.guard import admin_required, require_all_jobs
from webapp.errors import ApiError
from webapp.monitor.broadcasts import (
    LIST_METHODS,
    METHODS,
    control,
    inspect_workers,
    known_host,
    shutdown_worker,
)
from webapp.monitor.worker_status import list_workers
from webapp.params import int_arg
from webapp.queues import check_queue_name
from webapp.services import services

bp = Blueprint("flower_workers", __name__, url_prefix="/api")

# The most pool processes a control may add, remove or autoscale to: more is a typo
# or an attack (each one is a process on the worker's machine).
MAX_POOL = 1_000


def flag(name: str) -> bool:
    return request.values.get(name, "").lower() in ("1", "true", "yes", "on")


def int_value(name: str, default: int | None = None, lo: int = 0, hi: int = MAX_POOL) -> int:
    value = int_arg(name, request.values.get(name), default, lo, hi)
    if value is None:
        raise ApiError(400, "bad_request", f'"{name}" is required', field=name)
    return value


def required(name: str) -> str:
    value = request.values.get(name)
    if not value:
        raise ApiError(400, "bad_request", f'"{name}" is required')
    return value


def ok_or_403(reply: dict[str, Any], what: str) -> Any:
    if "ok" in reply:
        return reply["ok"]
    raise ApiError(403, "control_failed", f"{what}: {reply.get('error', 'Unknown reason')}")


@bp.get("/workers")
@require_all_jobs
def workers() -> Any:
    svc = services()
    name = request.args.get("workername") or None
    known = list_workers(svc)
    if name is not None and name not in {w["hostname"] for w in known}:
        raise ApiError(404, "unknown_worker", f"Unknown worker '{name}'")
    if flag("status"):
        return jsonify({w["hostname"]: w["online"] for w in known})
    hosts = [name] if name else [w["hostname"] for w in known if w["online"]]
    # as Flower: the task lists only when one worker is asked for
    replies = inspect_workers(svc, hosts, METHODS if name else LIST_METHODS)
    now = time.time()
    out = {h: {**info, "timestamp": now} for h, info in replies.items() if info}
    return jsonify(out)


@bp.post("/worker/shutdown/<path:workername>")
@admin_required
def shutdown(workername: str) -> Any:
    svc = services()
    known_host(svc, workername)
    shutdown_worker(svc, workername)
    return jsonify({"message": "Shutting down!"})


@bp.post("/worker/pool/restart/<path:workername>")
@admin_required
def pool_restart(workername: str) -> Any:
    svc = services()
    known_host(svc, workername)
    reply = control(svc, "pool_restart", workername, {"reload": False})
    ok_or_403(reply, f"Failed to restart the '{workername}' pool")
    return jsonify({"message": f"Restarting '{workername}' worker's pool"})


@bp.post("/worker/pool/grow/<path:workername>")
@admin_required
def pool_grow(workername: str) -> Any:
    svc = services()
    known_host(svc, workername)
    n = int_value("n", 1, lo=1)
    ok_or_403(control(svc, "pool_grow", workername, {"n": n}), f"Failed to grow '{workername}'")
    return jsonify({"message": f"Growing '{workername}' worker's pool by {n}"})


@bp.post("/worker/pool/shrink/<path:workername>")
@admin_required
def pool_shrink(workername: str) -> Any:
    svc = services()
    known_host(svc, workername)
    n = int_value("n", 1, lo=1)
    reply = control(svc, "pool_shrink", workername, {"n": n})
    ok_or_403(reply, f"Failed to shrink '{workername}'")
    return jsonify({"message": f"Shrinking '{workername}' worker's pool by {n}"})


@bp.post("/worker/pool/autoscale/<path:workername>")
@admin_required
def pool_autoscale(workername: str) -> Any:
    svc = services()
    known_host(svc, workername)
    lo, hi = int_value("min"), int_value("max")
    reply = control(svc, "autoscale", workername, {"min": lo, "max": hi})
    ok_or_403(reply, f"Failed to autoscale '{workername}'")
    return jsonify({"message": f"Autoscaling '{workername}' worker (min={lo}, max={hi})"})


@bp.post("/worker/queue/add-consumer/<path:workername>")
@admin_required
def add_consumer(workername: str) -> Any:
    svc = services()
    known_host(svc, workername)
    queue = check_queue_name(svc, required("queue"))
    reply = control(svc, "add_consumer", workername, {"queue": queue})
    return jsonify({"message": ok_or_403(reply, f"Failed to add '{queue}' consumer")})


@bp.post("/worker/queue/cancel-consumer/<path:workername>")
@admin_required
def cancel_consumer(workername: str) -> Any:
    svc = services()
    known_host(svc, workername)
    queue = required("queue")
    reply = control(svc, "cancel_consumer", workername, {"queue": queue})
    return jsonify({"message": ok_or_403(reply, f"Failed to cancel '{queue}' consumer")})
