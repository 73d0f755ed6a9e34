"""The worker's start-up banner, made honest about task events.

Celery's banner says "task events: OFF (enable -E to monitor tasks in this
worker)" unless `-E` is given. Agentdeck does not need Celery's event stream:
its own signal receivers publish every task's events (`workers/signals.py`),
so the banner says that instead of asking for `-E`.
"""

from __future__ import annotations

from celery.apps.worker import Worker as CeleryWorker

CELERY_EVENTS_OFF = "OFF (enable -E to monitor tasks in this worker)"
AGENTDECK_EVENTS = "Agentdeck's own (job.*, worker.*); Celery's -E stream not needed"


class Worker(CeleryWorker):  # type: ignore[misc]
    def startup_info(self, artlines: bool = True) -> str:
        return str(super().startup_info(artlines)).replace(CELERY_EVENTS_OFF, AGENTDECK_EVENTS)
