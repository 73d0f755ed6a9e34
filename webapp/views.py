"""Pages: server-rendered with Jinja, live through small JavaScript modules."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("views", __name__)
