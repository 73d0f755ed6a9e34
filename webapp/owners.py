"""Who owns which job, for the hub's per-user filtering of the `jobs` topic.

An agent job's row (with its owner) is committed before its task is sent,
so by the time any event of it is published the owner is in SQL; a plain
Celery task has no row then and no owner ever. Answers are kept in a bounded
LRU so the hub asks SQL once per job, in batches.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from workers.models import Job

CACHE_MAX = 100_000
BATCH = 500


class JobOwners:
    def __init__(self, sessions: sessionmaker) -> None:
        self.sessions = sessions
        self._known: OrderedDict[str, str | None] = OrderedDict()
        self._lock = threading.Lock()

    def of(self, job_ids: Iterable[str]) -> dict[str, str | None]:
        """{job: owner id or None} for each job."""
        wanted = list(dict.fromkeys(job_ids))
        out: dict[str, str | None] = {}
        missing: list[str] = []
        with self._lock:
            for job in wanted:
                if job in self._known:
                    self._known.move_to_end(job)
                    out[job] = self._known[job]
                else:
                    missing.append(job)
        for start in range(0, len(missing), BATCH):
            chunk = missing[start : start + BATCH]
            with self.sessions() as s:
                found = dict(s.execute(select(Job.id, Job.owner_id).where(Job.id.in_(chunk))).all())
            for job in chunk:
                out[job] = found.get(job)
            self._remember({job: found.get(job) for job in chunk if job in found})
        return out

    def owned_by(self, job_id: str, user_id: str) -> bool:
        return self.of([job_id]).get(job_id) == user_id

    def note(self, job_id: str, owner_id: str | None) -> None:
        """A job this process just created."""
        self._remember({job_id: owner_id})

    def _remember(self, owners: dict[str, str | None]) -> None:
        with self._lock:
            self._known.update(owners)
            while len(self._known) > CACHE_MAX:
                self._known.popitem(last=False)
