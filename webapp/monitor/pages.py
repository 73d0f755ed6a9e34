"""The monitoring pages: dashboard, workers, a worker, tasks, a task, broker.

Server-rendered shells on the shared base layout; each page loads its data
over /api/monitor/ and follows it over the `/ws` WebSocket (topics `workers`
and `jobs`), through the pages' one WebSocket module (static/js/live.js).
"""

from __future__ import annotations

import re

from flask import Blueprint, abort, render_template

from webapp.auth.guard import current_principal
from webapp.views import page_headers
from workers.events import JobState

bp = Blueprint("monitor", __name__, url_prefix="/monitor")

STATES = [s.value for s in JobState]
TASK_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
HOSTNAME = re.compile(r"^[^\s/]{1,255}$")


bp.after_request(page_headers)


@bp.before_request
def _monitoring_only() -> None:
    if not current_principal().sees_all:
        abort(403)


@bp.get("/")
def dashboard() -> str:
    return render_template("monitor/dashboard.html", page="monitor-dashboard", title="Dashboard")


@bp.get("/workers")
def workers() -> str:
    return render_template("monitor/workers.html", page="monitor-workers", title="Workers")


@bp.get("/workers/<path:host>")
def worker(host: str) -> str:
    if not HOSTNAME.match(host):
        abort(404)
    return render_template(
        "monitor/worker.html", page="monitor-workers", title=f"Worker {host}", host=host
    )


@bp.get("/tasks")
def tasks() -> str:
    return render_template("monitor/tasks.html", page="monitor-tasks", title="Tasks", states=STATES)


@bp.get("/tasks/<task_id>")
def task(task_id: str) -> str:
    if not TASK_ID.match(task_id):
        abort(404)
    return render_template(
        "monitor/task.html", page="monitor-tasks", title=f"Task {task_id}", task_id=task_id
    )


@bp.get("/broker")
def broker() -> str:
    return render_template("monitor/broker.html", page="monitor-broker", title="Broker")
