"""The wrapper every Celery signal receiver of Agentdeck wears.

Celery swallows what a receiver raises, so a broken receiver would fail
silently on every task; this logs the failure loudly instead.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger("agentdeck.signals")


def loud(fn: Callable[..., None]) -> Callable[..., None]:
    """Log what `fn` raises instead of letting Celery swallow it."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        try:
            fn(*args, **kwargs)
        except Exception:
            log.exception("agentdeck signal receiver %s failed", fn.__name__)

    return wrapper
