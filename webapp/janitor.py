"""The janitor: no job stays unfinished because an event was lost.

Every few seconds, one web process (whichever holds the lease) looks for
jobs that have sat in a non-final state for a while and asks Celery's result
backend how they ended. A job the backend says is over gets its final event,
marked `reconciled`, so the live state, SQL and browsers converge even when
the worker's own event was lost (for instance with Redis restarted before
the worker could publish it).

The janitor's tick and scan are also hook points (`every_tick`, `every_scan`):
the lost-worker checks plug in there, run by the lease holder only.
"""

from __future__ import annotations

import logging
import time

from celery.result import AsyncResult
from sqlalchemy import select

from webapp.loops import Loop
from webapp.services import Services, text
from workers.durable.store import not_suspended
from workers.events import FINAL_EVENT, FINAL_STATES, JobState
from workers.hooks import Hooks
from workers.models import Job
from workers.publisher import get_publisher
from workers.replay_log import head_of

log = logging.getLogger("agentdeck.janitor")

STUCK_AFTER = 30.0  # seconds without news before the backend is asked
SCAN_EVERY = 10.0
TICK = 1.0
OUTAGE_AFTER = 3 * TICK  # a gap between ticks this long: the janitor could not reach Redis
BATCH = 200


class Janitor(Loop):
    def __init__(self, svc: Services, hooks: Hooks | None = None) -> None:
        # Backoff capped below the lease's life: a janitor that fails (Redis away) for a
        # while lets another process take over.
        super().__init__("janitor", every=TICK, backoff=TICK, backoff_cap=4 * TICK, wait_first=True)
        self.svc = svc
        self.keys = svc.settings.keys
        self.hooks = hooks or Hooks()
        self.reconciled = 0  # jobs this process ended from the result backend
        self._next_scan = time.monotonic() + SCAN_EVERY
        self._last_tick = 0.0
        # When this janitor's ticks went through again after Redis was out of its reach
        # (restarted, failed over): workers' silence before then proves nothing.
        self.back_at = 0.0

    def tick(self) -> float | None:
        held = self._lease()  # raises while Redis is out of reach
        now = time.monotonic()
        if self._last_tick and now - self._last_tick > OUTAGE_AFTER:
            self.back_at = now
        self._last_tick = now
        if not held:
            return None
        self.hooks.every_tick()
        if time.monotonic() >= self._next_scan:
            self._next_scan = time.monotonic() + SCAN_EVERY
            self.reconcile_stuck()
            self.hooks.every_scan()
        return None

    def _lease(self) -> bool:
        """One janitor at a time across web processes (the lease outlives a tick)."""
        key = self.keys.janitor_lease
        me = self.svc.hub.instance_id
        if self.svc.redis.set(key, me, nx=True, ex=int(TICK * 5)):
            return True
        holder = self.svc.redis.get(key)
        if holder is not None and text(holder) == me:
            self.svc.redis.expire(key, int(TICK * 5))
            return True
        return False

    def reconcile_stuck(self, older_than: float = STUCK_AFTER) -> int:
        cutoff = time.time() - older_than
        open_states = [s.value for s in JobState if s not in FINAL_STATES]
        with self.svc.sessions() as s:
            rows = s.execute(
                select(Job.id, Job.updated_at, Job.created_at, Job.last_seq, Job.state)
                .where(Job.state.in_(open_states), not_suspended())
                .order_by(Job.created_at)
                .limit(BATCH)
            ).all()
        fixed = 0
        for job_id, updated_at, created_at, last_seq, state in rows:
            if (updated_at or created_at or 0) > cutoff:
                continue
            get_publisher().remember(job_id, last_seq, state)
            if self._reconcile(job_id):
                fixed += 1
        self.reconciled += fixed
        return fixed

    def _reconcile(self, job_id: str) -> bool:
        _, live = head_of(self.svc.redis, self.keys, job_id)
        if live is not None and JobState(live) in FINAL_STATES:
            return False  # the recorder will catch up
        result = AsyncResult(job_id, app=self.svc.celery)
        state = result.state
        event = FINAL_EVENT.get(state)
        if event is None:
            return False
        data: dict[str, object] = {"reconciled": True}
        if state == JobState.SUCCESS:
            data["result"] = result.result if _jsonable(result.result) else repr(result.result)
        elif state == JobState.FAILURE:
            data["error"] = f"{type(result.result).__name__}: {result.result}"
            data["traceback"] = result.traceback or ""
        else:
            data["reason"] = "revoked"
        get_publisher().emit(job_id, event, data, wait=True)
        log.info("reconciled %s to %s from the result backend", job_id, state)
        return True


def _jsonable(value: object) -> bool:
    return value is None or isinstance(value, (str, int, float, bool, list, dict))
