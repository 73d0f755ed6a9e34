"""Agent modules load when a worker starts, loudly.

A worker imports every module in AGENTDECK_AGENT_MODULES before it consumes a
single message: from its working directory or PYTHONPATH, however it was
started (`celery -A workers worker`, `python -m celery ...`, the launcher, the
image). A module that fails to import stops the worker with one line naming
the module and the error, instead of a worker that says it is ready and fails
every job it takes.
"""

from __future__ import annotations

import logging
import os
import sys

from workers.runtime import REGISTRY, AgentModuleError, load_agents

log = logging.getLogger("agentdeck.worker")


def cwd_on_path() -> str | None:
    """Put the working directory on sys.path (for good) unless it is there already.

    `python -m celery` puts it there; the `celery` script puts it there only while
    it imports the app (`-A workers`), and takes it off again, so agent modules in
    the working directory would not import at run time."""
    try:
        cwd = os.getcwd()
    except OSError:  # the directory was removed under us
        return None
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)
    return cwd


class AgentModulesFailed(SystemExit):
    """Stops the worker: a module of agents did not import (the message says which)."""


def load_at_start() -> list[str]:
    """Import every agent module now; the names of the agents registered.

    Raises `AgentModulesFailed` (a SystemExit with one line) if a module fails."""
    cwd_on_path()
    try:
        load_agents()
    except AgentModuleError as exc:
        raise AgentModulesFailed(f"agentdeck worker: not starting: {exc}") from exc
    return sorted(REGISTRY)
