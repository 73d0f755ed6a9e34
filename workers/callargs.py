"""A task's real call arguments, kept (when small) so a failed task can be sent again.

Celery gives `before_task_publish` the message body `(args, kwargs, embed)`
and the reprs it shows (`argsrepr`, truncated at about 1 KB). Only calls whose
reprs were not truncated are kept, so the cost stays bounded: one small
`json.dumps` per publish, and nothing for large payloads.
"""

from __future__ import annotations

import json
from typing import Any

REPR_LIMIT = 1000  # Celery cuts argsrepr/kwargsrepr at 1024 characters


def call_args(body: Any, headers: dict[str, Any]) -> dict[str, Any] | None:
    """{"args": [...], "kwargs": {...}} for a small JSON-able call, else None."""
    if not isinstance(body, (list, tuple)) or len(body) < 2:
        return None
    if len(str(headers.get("argsrepr") or "")) >= REPR_LIMIT:
        return None
    if len(str(headers.get("kwargsrepr") or "")) >= REPR_LIMIT:
        return None
    args, kwargs = body[0], body[1]
    if not isinstance(args, (list, tuple)) or not isinstance(kwargs, dict):
        return None
    try:
        json.dumps([args, kwargs])
    except (TypeError, ValueError):
        return None
    return {"args": list(args), "kwargs": kwargs}
