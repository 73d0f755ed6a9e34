"""`jobs:latest`: the `jobs` topic coalesced to the latest state of each job, once a tick.

Pages that show state rather than history (the jobs list) need not see every
lifecycle event: under a worker's full rate that is thousands of events a
second per page, each a wake-up, a parse and a row redrawn. The hub offers
this module every job event it dispatches; those that change what a list
shows (lifecycle events, `input.requested`, `progress`) wait here as they
came. Every `TICK` seconds the ticker folds them into one entry per job, makes
one frame for the clients who see every job and one per owner for the rest,
and hands the same bytes to each of its clients. So a client gets at most
one frame a tick, and the fold and the encoding are done once a tick whatever
the number of clients.

An entry is a patch: the fields the job's events since the last frame set
(docs/api.md, "The `jobs:latest` topic"). `seq` is the job's last event
folded in, so a page that reloaded the job over REST after the events left
can tell the entry is old. Nothing is dropped between ticks: a job's final
state is in the frame of the tick it came in. When the hub's subscription was
lost and is back, events may have been missed meanwhile, so each client is
sent `reset` and reloads over REST.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

from webapp import wsframes
from webapp.auth.roles import Principal
from webapp.loops import Loop
from workers.events import LIFECYCLE_PREFIX, EventType

log = logging.getLogger("agentdeck.coalesce")

JOBS_LATEST_TOPIC = "jobs:latest"
TICK = 0.1  # seconds: at most ten frames a second per client

# Besides lifecycle events (`job.*`): the events whose fields a list shows.
_ALSO_KEPT = frozenset({EventType.INPUT_REQUESTED.value, EventType.PROGRESS.value})

Entry = dict[str, Any]


class Subscriber(Protocol):
    """A client of the topic, as the coalescer sees it."""

    @property
    def principal(self) -> Principal | None: ...

    def put_bytes(self, data: bytes) -> bool: ...


def kept(type_: str) -> bool:
    """Whether an event of this type changes a `jobs:latest` entry."""
    return type_.startswith(LIFECYCLE_PREFIX) or type_ in _ALSO_KEPT


def fold_entry(entry: Entry | None, ev: dict[str, Any]) -> Entry:
    """Fold one envelope into a job's entry (a new entry when None), by the rules of
    `webapp/history.py::apply_event`, kept to the fields a list shows."""
    job = str(ev["job"])
    if entry is None:
        entry = {"id": job}
    ts = ev.get("ts")
    d = ev.get("data") or {}
    if not isinstance(d, dict):
        d = {}
    t = ev.get("type")
    if t == EventType.JOB_QUEUED:
        entry["queued"] = True
        if d.get("name"):
            entry["name"] = d["name"]
        if d.get("agent"):
            entry["agent"] = d["agent"]
        if d.get("parent_id") and d["parent_id"] != job:
            entry["parent_id"] = d["parent_id"]
        entry.setdefault("created_at", ts)
    elif t == EventType.JOB_RECEIVED:
        if d.get("worker"):
            entry["worker"] = d["worker"]
        if d.get("name") and not entry.get("name"):
            entry["name"] = d["name"]
    elif t == EventType.JOB_STARTED:
        entry["started_at"] = ts
        if d.get("worker"):
            entry["worker"] = d["worker"]
    elif t in (EventType.JOB_SUCCEEDED, EventType.JOB_FAILED):
        entry["finished_at"] = ts
    elif t == EventType.JOB_CANCELLED:
        entry.setdefault("finished_at", ts)
    elif t == EventType.PROGRESS:
        entry["progress"] = {"done": d.get("done"), "total": d.get("total")}
    entry["state"] = ev.get("state")
    entry["seq"] = max(int(entry.get("seq", 0)), int(ev["seq"]))
    entry["updated_at"] = ts
    return entry


def fold_entries(raws: Iterable[tuple[int, str]]) -> dict[str, Entry]:
    """{job: entry} of `(seq, envelope)` pairs, each job's folded in seq order."""
    by_job: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    for seq, raw in raws:
        try:
            ev = json.loads(raw)
            by_job.setdefault(str(ev["job"]), []).append((seq, ev))
        except (ValueError, KeyError, TypeError):
            log.error("leaving a malformed envelope out of jobs:latest: %.200s", raw)
    out: dict[str, Entry] = {}
    for job, evs in by_job.items():
        evs.sort(key=lambda pair: pair[0])
        entry: Entry | None = None
        for _, ev in evs:
            entry = fold_entry(entry, ev)
        if entry is not None:
            out[job] = entry
    return out


def latest_frame(entries: list[Entry]) -> bytes:
    """The WebSocket frame (built once, the same bytes for every client)."""
    text = json.dumps(
        {"type": "latest", "topic": JOBS_LATEST_TOPIC, "jobs": entries}, separators=(",", ":")
    )
    return wsframes.text(text)


class Coalescer(Loop):
    """Collects the kept events the hub dispatches; each tick, one frame to each client."""

    def __init__(
        self,
        subscribers: Callable[[], Sequence[Subscriber]],
        owners_of: Callable[[Iterable[str]], dict[str, str | None]],
    ) -> None:
        super().__init__("jobs-latest", every=TICK, backoff=TICK, backoff_cap=2.0)
        self._subscribers = subscribers
        self._owners_of = owners_of
        self._lock = threading.Lock()
        self._pending: list[tuple[int, str]] = []
        self.frames = 0  # frames built (once each, whatever the number of clients)

    def offer(self, seq: int, type_: str, raw: str) -> None:
        """An event the hub dispatched (from its listener: keep this cheap)."""
        if kept(type_):
            with self._lock:
                self._pending.append((seq, raw))

    def tick(self) -> float | None:
        with self._lock:
            pending, self._pending = self._pending, []
        if not pending:
            return None
        clients = self._subscribers()
        if clients:
            self.send(clients, fold_entries(pending))
        return None

    def send(self, clients: Sequence[Subscriber], entries: dict[str, Entry]) -> None:
        """One frame for those who see everything, one per owner for the rest."""
        if not entries:
            return
        frames: dict[str | None, bytes | None] = {}
        owners: dict[str, str | None] | None = None
        for client in clients:
            who = client.principal
            if who is None:
                continue
            key = None if who.sees_all else who.user_id
            if key not in frames:
                if key is None:
                    frames[key] = latest_frame(list(entries.values()))
                else:
                    if owners is None:  # asked once a tick, for every job in it
                        owners = self._owners_of(entries)
                    mine = [e for job, e in entries.items() if owners.get(job) == key]
                    frames[key] = latest_frame(mine) if mine else None
                self.frames += frames[key] is not None
            frame = frames[key]
            if frame is not None:
                client.put_bytes(frame)

    def reset(self) -> None:
        """Events may have been missed (the hub's subscription was lost): every client
        reloads over REST."""
        frame = wsframes.text(json.dumps({"type": "reset", "topic": JOBS_LATEST_TOPIC}))
        for client in self._subscribers():
            client.put_bytes(frame)
