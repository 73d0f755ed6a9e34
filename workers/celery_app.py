"""The Celery app: `celery -A workers worker` finds it as `workers.app`."""

from __future__ import annotations

from typing import Any

from celery import Celery
from kombu.utils.objects import cached_property


class AgentdeckCelery(Celery):  # type: ignore[misc]
    @cached_property
    def Worker(self) -> Any:  # noqa: N802 (Celery's name)
        """Celery's worker with a banner that tells the truth about task events."""
        return self.subclass_with_self("workers.banner:Worker")


app = AgentdeckCelery("agentdeck")
app.config_from_object("celeryconfig")

import workers.monitoring  # noqa: E402,F401  (connects the signal receivers and presence)
import workers.worker_env  # noqa: E402,F401  (drops the web's secrets, loads agents at start-up)
