"""The benchmark's Celery app: one no-op task, Agentdeck's receivers on or off.

`BENCH_MONITOR=1` imports `workers.monitoring` (the one line a user adds),
`celery-events` turns on Celery's own task events instead (what Flower
needs: `-E`); anything else leaves a bare Celery app.
"""

from __future__ import annotations

import os

from celery import Celery

QUEUE = "agentdeck-bench"

app = Celery("bench", broker=os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0")
app.conf.update(
    task_serializer="json",
    accept_content=["json"],
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=int(os.environ.get("BENCH_PREFETCH", "4")),
    task_ignore_result=True,
    task_default_queue=QUEUE,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)

_mode = os.environ.get("BENCH_MONITOR", "0")
if _mode == "1":
    import workers.monitoring  # noqa: F401
elif _mode == "celery-events":  # what Flower needs: Celery's own task events (-E)
    app.conf.worker_send_task_events = True
    app.conf.task_send_sent_event = True


@app.task(name="bench.noop")
def noop() -> None:
    return None
