"""The Celery task that runs an agent with its context."""

from __future__ import annotations

import logging
from typing import Any

import redis
from celery import Task
from celery.exceptions import Ignore, SoftTimeLimitExceeded

from workers.celery_app import app
from workers.context import AgentLogHandler, Context, JobCancelled
from workers.durable import store
from workers.durable.children import Parent
from workers.durable.db import worker_sessions
from workers.durable.replay import Replay
from workers.durable.runner import DurableRun, Suspended
from workers.events import EventType, JobState
from workers.publisher import Publisher, get_publisher
from workers.runtime import RUN_AGENT_TASK, get_agent, time_limits
from workers.settings import get_settings

log = logging.getLogger("agentdeck.tasks")

# For messages that carry no limits of their own (sent by other means than
# POST /api/jobs, which sets the agent's): nothing holds a worker forever.
DEFAULT_SOFT_LIMIT, DEFAULT_HARD_LIMIT = time_limits(get_settings().run_time_limit)


class WorkerLost(RuntimeError):
    """A run of this job lost its worker, and the agent's policy says to stop."""


class RunTimeLimitExceeded(RuntimeError):
    """The run took longer than its agent's time limit."""


def _check_redelivery(publisher: Publisher, job_id: str, run: int, on_lost: str, cap: int) -> None:
    """Count this run; a run after a lost one obeys the agent's `on_lost` policy."""
    key = publisher.keys.deliveries(job_id, run)
    pipe = publisher.redis.pipeline()
    pipe.incr(key)
    pipe.expire(key, publisher.settings.replay_ttl_seconds)
    try:
        runs = int(pipe.execute()[0])
    except redis.RedisError:
        return  # Redis away: run the job rather than fail it for want of a count
    if runs == 1:
        return
    lost = runs - 1
    try:
        said = publisher.redis.getdel(publisher.keys.lost_reported(job_id))
    except redis.RedisError:
        said = None
    if said is None:  # the pool child died, or RabbitMQ redelivered first: nobody said it yet
        publisher.emit(
            job_id,
            EventType.JOB_LOST,
            {
                "error": "WorkerLostError: a previous run's worker process died",
                "runs": runs,
                "requeued": on_lost != "fail" and lost <= cap,
            },
        )
    if on_lost == "fail":
        publisher.flush(timeout=2.0)
        raise WorkerLost("WorkerLostError: the worker running this job died (policy: fail)")
    if lost > cap:
        publisher.flush(timeout=2.0)
        raise WorkerLost(f"WorkerLostError: the job lost its worker {lost} times; giving up")


@app.task(
    name=RUN_AGENT_TASK,
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=DEFAULT_SOFT_LIMIT,
    time_limit=DEFAULT_HARD_LIMIT,
)
def run_agent(self: Task, agent: str, input: dict[str, Any], run: int = 0) -> Any:
    """Run (or resume: `run` is the run number a resumption gave) the agent."""
    spec = get_agent(agent)
    values = spec.validate(input)
    publisher = get_publisher()
    job_id = self.request.id
    sessions = worker_sessions()
    job_row, recorded = store.load(sessions, job_id)
    if job_row is not None and run < job_row.run_no:
        log.info(
            "job %s: run %d was superseded by run %d; not running it", job_id, run, job_row.run_no
        )
        raise Ignore()
    _check_redelivery(publisher, job_id, run, spec.on_lost, spec.max_redeliveries)
    # job.started (and job.lost) are in Redis before the agent's code can crash
    # its process: a SIGKILL loses at most what the agent said in its last moments.
    publisher.flush(timeout=2.0)
    durable = DurableRun(
        job_id=job_id,
        parent=Parent(
            job_id,
            job_row.owner_id if job_row else None,
            job_row.root_id if job_row else None,
            job_row.queue if job_row else None,
        ),
        sessions=sessions,
        publisher=publisher,
        redis=publisher.redis,
        send=app.send_task,
        replay=Replay(recorded),
    )
    ctx = Context(
        job_id=job_id, agent=agent, publisher=publisher, redis=publisher.redis, durable=durable
    )
    handler = AgentLogHandler(ctx)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        return spec.fn(ctx, **values)
    except Suspended:
        # The wait is recorded and `job.suspended` said: this message is done (acked),
        # the worker process takes the next job, and whoever ends the wait queues run + 1.
        raise Ignore() from None
    except JobCancelled:
        publisher.emit(job_id, EventType.JOB_CANCELLED, {"reason": "cancelled by request"})
        self.update_state(state=JobState.REVOKED.value)
        raise Ignore() from None
    except SoftTimeLimitExceeded:
        _, soft = self.request.timelimit or (None, None)
        limit = soft or self.soft_time_limit
        raise RunTimeLimitExceeded(
            f"time limit exceeded: agent {agent!r} ran longer than its limit of {limit:g} s"
        ) from None
    finally:
        root.removeHandler(handler)
