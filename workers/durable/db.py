"""The worker process's SQL sessions, for recorded steps (made on first use, per process:
a prefork child must not share its parent's connections)."""

from __future__ import annotations

import os
import threading

from sqlalchemy.orm import sessionmaker

from workers.models import make_engine, make_sessionmaker
from workers.settings import get_settings

_lock = threading.Lock()
_made: tuple[int, sessionmaker] | None = None


def worker_sessions() -> sessionmaker:
    global _made
    with _lock:
        if _made is None or _made[0] != os.getpid():
            _made = (os.getpid(), make_sessionmaker(make_engine(get_settings().sql_url)))
        return _made[1]
