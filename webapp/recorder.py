"""The recorder: replay log → SQL, idempotent by `(job, seq)`.

The publish script adds every job with new events to the `dirty` sorted set
(score: its last seq). The recorder stores what SQL lacks, then removes the
job from the set only if no newer event came meanwhile. Events emitted while
no web process ran are still in the log and the set, so they are recorded
when one comes back. Several web processes may record at once: inserts skip
rows already there.
"""

from __future__ import annotations

import logging
import threading
import time

import redis
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from webapp.history import apply_event, insert_events_ignoring_duplicates, new_job_row
from webapp.services import text
from workers.events import EnvelopeError, decode
from workers.models import Job
from workers.replay_log import read_log
from workers.settings import Settings

log = logging.getLogger("agentdeck.recorder")

# Remove the job from the dirty set only if its score is still the one we read.
CLEAR_IF_UNCHANGED = """
local s = redis.call('ZSCORE', KEYS[1], ARGV[1])
if s and tonumber(s) <= tonumber(ARGV[2]) then return redis.call('ZREM', KEYS[1], ARGV[1]) end
return 0
"""

BATCH_JOBS = 200
MIN_PASS_INTERVAL = 0.05


class Recorder:
    def __init__(self, settings: Settings, client: redis.Redis, sessions: sessionmaker) -> None:
        self.keys = settings.keys
        self.redis = client
        self.sessions = sessions
        self._clear = client.register_script(CLEAR_IF_UNCHANGED)
        self._wake = threading.Event()
        self._stopping = False
        self.recorded = 0
        self.errors = 0

    def start(self) -> None:
        threading.Thread(target=self._run, name="agentdeck-recorder", daemon=True).start()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    def wake(self, job: str | None = None) -> None:
        self._wake.set()

    def _run(self) -> None:
        backoff = 0.2
        while not self._stopping:
            try:
                n = self.drain_once()
                backoff = 0.2
            except Exception as exc:
                self.errors += 1
                log.warning("recorder pass failed (%s); retrying in %.1fs", exc, backoff)
                time.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            if n < BATCH_JOBS:
                self._wake.wait(0.5)
                self._wake.clear()
            # A burst of events wakes us per event: pausing turns it into a few
            # larger transactions, and leaves the loop to the live fan-out.
            time.sleep(MIN_PASS_INTERVAL)

    def drain_once(self) -> int:
        """Record the jobs marked dirty; returns how many were looked at."""
        entries: list[tuple[bytes, float]] = self.redis.zrange(  # type: ignore[assignment]
            self.keys.dirty, 0, BATCH_JOBS - 1, withscores=True
        )
        for raw_job, score in entries:
            job = text(raw_job)
            self.record_job(job)
            self._clear(keys=[self.keys.dirty], args=[job, int(score)])
        return len(entries)

    def record_job(self, job_id: str) -> int:
        for attempt in range(2):
            try:
                return self._record_job(job_id)
            except IntegrityError:
                if attempt:  # another recorder created the row: go again on it
                    raise
        return 0

    def _record_job(self, job_id: str) -> int:
        with self.sessions.begin() as s:
            job = s.get(Job, job_id, with_for_update=s.get_bind().dialect.name == "postgresql")
            last = job.last_seq if job is not None else 0
            _, raws = read_log(self.redis, self.keys, job_id, last)
            events = []
            for raw in raws:
                try:
                    events.append(decode(raw))
                except EnvelopeError as exc:
                    log.error("skipping a malformed event of %s: %s", job_id, exc)
            if not events:
                return 0
            if job is None:
                job = new_job_row(events[0])
                s.add(job)
            for event in events:
                apply_event(job, event)
            insert_events_ignoring_duplicates(s, events)
        self.recorded += len(events)
        return len(events)


def job_exists(sessions: sessionmaker, job_id: str) -> bool:
    with sessions() as s:
        return s.scalar(select(Job.id).where(Job.id == job_id)) is not None
