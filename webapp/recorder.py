"""The recorder: replay log → SQL, idempotent by `(job, seq)`.

The publish script adds every job with new events to the `dirty` sorted set
(score: its last seq). The recorder stores what SQL lacks, then removes the
job from the set only if no newer event came meanwhile. Events emitted while
no web process ran are still in the log and the set, so they are recorded
when one comes back. Several web processes may record at once: inserts skip
rows already there. Lone surrogates in event data (an agent may emit them)
are stored as U+FFFD; a job that still fails to record is quarantined (see
`quarantine`), so that one bad job never stops the recording of the others.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace

import redis
from sqlalchemy import text as sql_text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import sessionmaker

from webapp import quarantine
from webapp.history import (
    EventValues,
    apply_event,
    event_values,
    fold_events,
    folds_only_head,
    insert_event_rows,
    insert_events_ignoring_duplicates,
    job_heads,
    new_job_row,
    set_heads,
)
from webapp.loops import Loop
from webapp.services import text
from webapp.strict_json import may_need_scrub, scrub
from workers import lua
from workers.envelope import EnvelopeError, Event, decode, encode_data, read_row
from workers.hooks import Hook
from workers.models import Job
from workers.replay_log import read_log, read_logs
from workers.settings import Settings

log = logging.getLogger("agentdeck.recorder")

BATCH_JOBS = 200
IDLE_WAIT = 0.5  # seconds between passes when no event wakes the recorder
MIN_PASS_INTERVAL = 0.05


class Recorder(Loop):
    def __init__(self, settings: Settings, client: redis.Redis, sessions: sessionmaker) -> None:
        super().__init__("recorder", every=IDLE_WAIT, backoff=0.2, backoff_cap=5.0)
        self.keys = settings.keys
        self.redis = client
        self.sessions = sessions
        self._clear = client.register_script(lua.CLEAR_IF_UNCHANGED)
        self.recorded = 0  # events this process stored in SQL
        self.quarantined = 0
        self.passes_one_by_one = 0  # passes whose jobs could not be recorded together
        self._failures: dict[bytes, int] = {}  # dirty-set member -> failed attempts

    def tick(self) -> float | None:
        # A burst of events wakes us per event: pausing turns it into a few larger
        # transactions, and leaves the CPU to the live fan-out.
        time.sleep(MIN_PASS_INTERVAL)
        n = self.drain_once()
        return None if n < BATCH_JOBS else 0  # a full batch: more are waiting

    def drain_once(self) -> int:
        """Record the jobs marked dirty; returns how many were looked at."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.zrange(self.keys.dirty, 0, BATCH_JOBS - 1, withscores=True)
        pipe.hkeys(self.keys.quarantine)
        entries, quarantined = pipe.execute()
        held = set(quarantined)
        # Together while no job of the pass failed before (those go alone, to be told
        # from the others and quarantined if they keep failing).
        alone = {member for member, _ in entries} & (held | self._failures.keys())
        if entries and not alone and self._record_together(entries):
            return len(entries)
        for member, score in entries:
            try:
                self.record_job(text(member))
                self._clear(keys=[self.keys.dirty], args=[member, int(score)])
            except (redis.ConnectionError, redis.TimeoutError, OperationalError):
                raise  # Redis or SQL is away, not this job: the whole pass backs off
            except Exception as exc:
                self._failed(member, exc)  # this job only: go on with the others
                continue
            self._failures.pop(member, None)
            if member in held:  # recorded after all (a later try, a database fixed)
                quarantine.release(self.redis, self.keys, member)
        if len(entries) < BATCH_JOBS:  # every dirty job was seen: forget the others
            seen = {member for member, _ in entries}
            self._failures = {m: n for m, n in self._failures.items() if m in seen}
        return len(entries)

    def _failed(self, member: bytes, exc: Exception) -> None:
        """Count a failure of one job's recording; quarantine the job at MAX_ATTEMPTS."""
        if not self._stores_answer():
            raise exc  # a store went away meanwhile: not the job's fault
        job = member.decode("utf-8", "replace")
        attempts = self._failures.get(member, 0) + 1
        if attempts < quarantine.MAX_ATTEMPTS:
            self._failures[member] = attempts
            log.warning("could not record job %s (attempt %d): %r", job, attempts, exc)
            return
        self._failures.pop(member, None)
        quarantine.put(self.redis, self.keys, member, repr(exc), attempts)
        self.quarantined += 1
        log.error(
            "quarantined job %s: recording it failed %d times (%r); it no longer holds up "
            "the recorder, and is listed in %s",
            job,
            attempts,
            exc,
            self.keys.quarantine,
        )

    def _stores_answer(self) -> bool:
        try:
            self.redis.ping()
            with self.sessions() as s:
                s.execute(sql_text("SELECT 1"))
        except Exception:
            return False
        return True

    def _record_together(self, entries: list[tuple[bytes, float]]) -> bool:
        """Record every dirty job in one transaction, one read of their logs and one
        clearing round trip (a busy web process records hundreds of jobs a second).
        A job whose new events only move its state and seq (a stream's output) costs
        one row of a single UPDATE; its events go in as the text they came in.
        False when that failed: the caller records them one by one, where one bad job
        is told from the others (and quarantined)."""
        rows: list[EventValues] = []
        try:
            ids = [text(member) for member, _ in entries]
            with self.sessions.begin() as s:
                known = job_heads(s, ids)
                logs = read_logs(self.redis, self.keys, [(i, known.get(i, 0)) for i in ids])
                heads: list[tuple[str, int, float, str]] = []
                folded: dict[str, list[Event]] = {}
                for job_id, (_, raws) in zip(ids, logs, strict=True):
                    got = [row for raw in raws if (row := _row(job_id, raw)) is not None]
                    if not got:
                        continue
                    rows.extend(event_values(event, data) for event, data in got)
                    events = [event for event, _ in got]
                    if job_id in known and folds_only_head(events):
                        last = events[-1]
                        heads.append((job_id, last.seq, last.ts, last.state))
                    else:
                        folded[job_id] = events
                fold_events(s, known, folded)
                set_heads(s, heads)
                insert_event_rows(s, rows)
            pairs = [arg for member, score in entries for arg in (member, int(score))]
            self._clear(keys=[self.keys.dirty], args=pairs)
        except Exception as exc:
            log.info("recording %d jobs together failed, one by one now: %r", len(entries), exc)
            self.passes_one_by_one += 1
            return False
        self.recorded += len(rows)
        return True

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
            decoded = [_decoded(job_id, raw) for raw in raws]
            events = [event for event in decoded if event is not None]
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


def _row(job_id: str, raw: str) -> tuple[Event, str] | None:
    """An envelope's event and its data's JSON text for SQL; None if it is malformed."""
    if not may_need_scrub(raw) and (row := read_row(raw)) is not None:
        return row
    event = _decoded(job_id, raw)
    return None if event is None else (event, encode_data(event.data))


def _decoded(job_id: str, raw: str) -> Event | None:
    try:
        event = decode(raw)
    except EnvelopeError as exc:
        log.error("skipping a malformed event of %s: %s", job_id, exc)
        return None
    if may_need_scrub(raw):  # lone surrogates, NUL: SQL cannot hold them
        event = replace(event, data=scrub(event.data))
    return event


class WakeRecorder(Hook):
    """Each job event this web process sees wakes its recorder: SQL follows at once."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder

    def on_envelope(self, raw: str, job: str) -> None:
        self.recorder.wake()
