"""What a worker does at start-up, before any agent runs.

`celeryd_init` comes before the worker imports task modules and forks its
pool. First the worker drops the web server's secrets from its environment
(agents' code runs in the worker's processes and can read it), so no agent ever
sees them in `os.environ` or in the settings; then it imports the modules of
agents (`workers.agent_modules`), and stops at once if one does not import.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import signals

from workers.agent_modules import load_at_start
from workers.runtime import REGISTRY
from workers.settings import drop_web_secrets

log = logging.getLogger("agentdeck.worker")


@signals.celeryd_init.connect
def on_celeryd_init(**kwargs: Any) -> None:
    dropped = drop_web_secrets()
    if dropped:
        log.warning("removed %s from the worker's environment", ", ".join(dropped))
    load_at_start()  # raises SystemExit (one line) if a module fails


@signals.worker_ready.connect
def on_worker_ready(**kwargs: Any) -> None:
    log.info("agents: %s", ", ".join(sorted(REGISTRY)))
