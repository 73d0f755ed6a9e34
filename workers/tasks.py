"""The Celery task that runs an agent with its context."""

from __future__ import annotations

import logging
from typing import Any

from celery import Task
from celery.exceptions import Ignore

from workers.celery_app import app
from workers.context import AgentLogHandler, Context, JobCancelled
from workers.events import EventType, JobState
from workers.publisher import get_publisher
from workers.runtime import RUN_AGENT_TASK, get_agent


@app.task(name=RUN_AGENT_TASK, bind=True, acks_late=True, reject_on_worker_lost=True)
def run_agent(self: Task, agent: str, input: dict[str, Any]) -> Any:
    spec = get_agent(agent)
    values = spec.validate(input)
    publisher = get_publisher()
    job_id = self.request.id
    ctx = Context(job_id=job_id, agent=agent, publisher=publisher, redis=publisher.redis)
    handler = AgentLogHandler(ctx)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        return spec.fn(ctx, **values)
    except JobCancelled:
        publisher.emit(job_id, EventType.JOB_CANCELLED, {"reason": "cancelled by request"})
        self.update_state(state=JobState.REVOKED.value)
        raise Ignore() from None
    finally:
        root.removeHandler(handler)
