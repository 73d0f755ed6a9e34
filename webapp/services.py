"""What the web app's blueprints share: settings, Redis, SQL, the hub, the recorder, the
app's hooks and background loops."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import redis
from celery import Celery
from flask import current_app
from sqlalchemy.engine import Engine
from sqlalchemy.orm import sessionmaker

from webapp.loops import Loops
from workers.hooks import Hooks
from workers.settings import Settings

if TYPE_CHECKING:
    from webapp.auth.store import AccountStore
    from webapp.hub import Hub
    from webapp.janitor import Janitor
    from webapp.recent import Recent
    from webapp.recorder import Recorder
    from webapp.submitter import Submitter

WORKERS_FRESH = 1.0  # s: how long a listing of the workers is reused (see webapp/recent.py)


@dataclass
class Services:
    settings: Settings
    redis: redis.Redis  # the event bus's (Settings.events_url): Agentdeck's keys, not Celery's
    engine: Engine
    sessions: sessionmaker
    celery: Celery
    hub: Hub
    recorder: Recorder
    janitor: Janitor | None = None
    accounts: AccountStore | None = None
    hooks: Hooks = field(default_factory=Hooks)  # the app's hooks (hub, janitor)
    loops: Loops = field(default_factory=Loops)  # the app's background threads
    submitter: Submitter = field(init=False)  # stores and sends accepted jobs, in batches
    workers_seen: Recent[list[dict[str, Any]]] = field(init=False)  # list_workers, reused

    def __post_init__(self) -> None:
        from webapp.monitor.worker_status import list_workers
        from webapp.recent import Recent
        from webapp.submitter import Submitter

        self.submitter = Submitter(self)
        self.workers_seen = Recent(lambda: list_workers(self), WORKERS_FRESH)


def text(value: object) -> str:
    """A Redis reply as text (clients here return bytes)."""
    return value.decode() if isinstance(value, bytes) else str(value)


def services() -> Services:
    svc: Services = current_app.extensions["agentdeck"]
    return svc
