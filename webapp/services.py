"""What the web app's blueprints share: settings, Redis, SQL, the hub, the recorder, the
app's hooks and background loops."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

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
    from webapp.recorder import Recorder


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


def text(value: object) -> str:
    """A Redis reply as text (clients here return bytes)."""
    return value.decode() if isinstance(value, bytes) else str(value)


def services() -> Services:
    svc: Services = current_app.extensions["agentdeck"]
    return svc
