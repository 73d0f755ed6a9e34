"""Agentdeck's worker side: the Celery app, the agent runtime, the signal receivers.

Importing `workers` stays light (the shared leaf modules live here too); the
Celery app is created on first access to `workers.app`.
"""

from typing import Any


def __getattr__(name: str) -> Any:
    if name in ("app", "celery"):
        from workers.celery_app import app

        return app
    raise AttributeError(name)
