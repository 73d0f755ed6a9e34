"""The worker drops the web server's secrets from its environment at start-up.

Agents' code runs in the worker's processes and can read their environment.
`celeryd_init` comes before the worker imports task modules and forks its
pool, so no agent ever sees them in `os.environ` or in the settings.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import signals

from workers.settings import drop_web_secrets

log = logging.getLogger("agentdeck.worker")


@signals.celeryd_init.connect
def on_celeryd_init(**kwargs: Any) -> None:
    dropped = drop_web_secrets()
    if dropped:
        log.warning("removed %s from the worker's environment", ", ".join(dropped))
