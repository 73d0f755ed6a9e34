"""Pages: server-rendered with Jinja, live through small JavaScript modules.

The pages hold no job data of their own: each fetches what it shows over the
REST API and follows it over the `/ws` WebSocket (see docs/ui.md). Agent
output is only ever put into the page as text, and the Content-Security-Policy
below forbids inline scripts, so an agent that prints `<script>` runs nothing.
"""

from __future__ import annotations

import re

from flask import Blueprint, Response, abort, render_template, request

from workers.events import JobState

bp = Blueprint("views", __name__)

STATES = [s.value for s in JobState]
JOB_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")

CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
        "form-action 'self'",
    ]
)


@bp.after_request
def page_headers(response: Response) -> Response:
    """Security headers for every page (the monitoring blueprint uses them too)."""
    if response.mimetype == "text/html":
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("Cache-Control", "no-store")
    return response


@bp.get("/")
def jobs() -> str:
    return render_template("jobs.html", page="jobs", title="Jobs", states=STATES)


@bp.get("/jobs/<job_id>")
def run(job_id: str) -> str:
    if not JOB_ID.match(job_id):
        abort(404)
    return render_template("run.html", page="run", title=f"Job {job_id}", job_id=job_id)


@bp.get("/submit")
def submit() -> str:
    agent = request.args.get("agent", "")
    return render_template("submit.html", page="submit", title="Submit", agent=agent)


@bp.get("/agents")
def agents() -> str:
    return render_template("agents.html", page="agents", title="Agents")
