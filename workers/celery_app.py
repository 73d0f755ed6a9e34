"""The Celery app: `celery -A workers worker` finds it as `workers.app`."""

from __future__ import annotations

from celery import Celery

app = Celery("agentdeck")
app.config_from_object("celeryconfig")

import workers.monitoring  # noqa: E402,F401  (connects the signal receivers and presence)
import workers.worker_env  # noqa: E402,F401  (drops the web's secrets at start-up)
