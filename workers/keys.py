"""Every Redis key and channel name Agentdeck uses, in one place.

All names start with the configurable prefix (``agentdeck:`` by default) so
tests and several installations can share one Redis.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_PREFIX = "agentdeck:"


@dataclass(frozen=True, slots=True)
class Keys:
    prefix: str = DEFAULT_PREFIX

    # --- per job -----------------------------------------------------------
    def log(self, job: str) -> str:
        """List: the job's replay log, oldest first, capped; its last entry holds the
        job's last seq and state (see `replay_log`)."""
        return f"{self.prefix}replay:{job}"

    def cancel(self, job: str) -> str:
        """Flag set when a cancellation was requested (cooperative check)."""
        return f"{self.prefix}cancel:{job}"

    def answer(self, job: str) -> str:
        """List: answers to the job's input requests."""
        return f"{self.prefix}answer:{job}"

    def deliveries(self, job: str, run: int = 0) -> str:
        """Counter: how many times a worker began running the job's run number `run`
        (redeliveries cap; a resumed run starts a count of its own)."""
        return f"{self.prefix}deliveries:{job}" + (f":{run}" if run else "")

    def restores(self, job: str) -> str:
        """Counter: how many times the janitor put a lost job's message back."""
        return f"{self.prefix}restores:{job}"

    def lost_reported(self, job: str) -> str:
        """Flag: the janitor already said `job.lost` for the job's last run."""
        return f"{self.prefix}lostsaid:{job}"

    def lost_claim(self, hostname: str) -> str:
        """Lock: one web process handles a lost worker's jobs."""
        return f"{self.prefix}lost:{hostname}"

    def login_failures(self, name: str) -> str:
        """Counter, expiring: failed password logins for a user name (throttling)."""
        return f"{self.prefix}loginfail:{name}"

    def receipt(self, token: str) -> str:
        """What one publish call returned, so its retry publishes nothing twice."""
        return f"{self.prefix}receipt:{token}"

    # --- global ------------------------------------------------------------
    @property
    def dirty(self) -> str:
        """Sorted set: jobs with events the recorder has not stored, by last seq."""
        return f"{self.prefix}dirty"

    @property
    def quarantine(self) -> str:
        """Hash: job id -> why the recorder gave up on it (JSON: error, attempts, at).
        The job left the dirty set; new events of it put it back for another try."""
        return f"{self.prefix}recorder:quarantine"

    @property
    def epoch(self) -> str:
        """A random id written once; it changes when Redis loses its data."""
        return f"{self.prefix}epoch"

    @property
    def janitor_lease(self) -> str:
        """Which web process runs the janitor now (a lease with a short expiry)."""
        return f"{self.prefix}janitor"

    @property
    def events_channel(self) -> str:
        """Pub/sub channel carrying every job event envelope."""
        return f"{self.prefix}events"

    @property
    def workers_channel(self) -> str:
        """Pub/sub channel carrying worker presence events."""
        return f"{self.prefix}workers"

    @property
    def workers(self) -> str:
        """Hash: worker hostname -> last heartbeat JSON."""
        return f"{self.prefix}workers:seen"

    @property
    def metrics(self) -> str:
        """Hash: counters shared by all processes (events published and dropped, failed
        publish calls and the last one's error, ...)."""
        return f"{self.prefix}metrics"

    # --- monitoring (workers/worker_stats.py, webapp/monitor/) ---------------
    @property
    def worker_beats(self) -> str:
        """Sorted set: worker hostname -> Redis time of its last heartbeat."""
        return f"{self.prefix}workers:beats"

    @property
    def workers_offline(self) -> str:
        """Hash: worker hostname -> time it was marked offline (absent: online)."""
        return f"{self.prefix}workers:offline"

    @property
    def workers_expired(self) -> str:
        """Hash: worker hostname -> time the web saw its heartbeats stop (absent: beating)."""
        return f"{self.prefix}workers:expired"

    @property
    def ws_clients(self) -> str:
        """Hash: web process -> "count time": WebSocket clients it holds, for /metrics."""
        return f"{self.prefix}metrics:ws"

    @property
    def web_counters(self) -> str:
        """Hash: web process -> JSON of its in-memory counters and when it wrote them."""
        return f"{self.prefix}metrics:web"

    @property
    def dashboard_samples(self) -> str:
        """List: the dashboard's samples, newest first, capped at an hour."""
        return f"{self.prefix}dash:samples"

    @property
    def dashboard_totals(self) -> str:
        """String: the worker counters the last dashboard sample was taken from, and what
        the samples of the last window counted (JSON)."""
        return f"{self.prefix}dash:totals"

    def dashboard_lock(self, slot: int) -> str:
        """Taken by the one web process that takes the sample of this time slot."""
        return f"{self.prefix}dash:lock:{slot}"

    @property
    def latency(self) -> str:
        """Hash: event delivery latency histogram (bucket -> count, sum, count)."""
        return f"{self.prefix}metrics:latency"
