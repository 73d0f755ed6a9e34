"""Worker presence: `worker.online`, `worker.heartbeat` every few seconds, `worker.offline`.

The main process of each worker runs one heartbeat thread. A beat is one
Redis round trip (a script): the worker's last beat time (Redis' clock, so
hosts with skewed clocks agree) in a sorted set, its last payload in a hash,
and a PUBLISH on the workers channel. A worker killed without a word stops
beating; the web side marks it offline (webapp/monitor/worker_status.py).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

from celery import signals
from celery.worker import state as worker_state

from workers import lua
from workers.publisher import get_publisher
from workers.redis_urls import primary_moved
from workers.settings import get_settings
from workers.signals import announce_received
from workers.worker_info import snapshot
from workers.worker_stats import STATS

log = logging.getLogger("agentdeck.presence")


class Heartbeat:
    def __init__(self, consumer: Any) -> None:
        self.consumer = consumer
        self.settings = get_settings()
        self.redis = get_publisher().redis
        self._script = self.redis.register_script(lua.BEAT)
        self._stop = threading.Event()
        self.started = time.time()
        self.hostname = str(consumer.hostname)
        self._thread = threading.Thread(target=self._run, name="agentdeck-heartbeat", daemon=True)

    def start(self) -> None:
        self.send("worker.online")
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)
        self.send("worker.offline")

    def payload(self, type_: str) -> str:
        data = snapshot(self.consumer, STATS, self.started, self.settings.heartbeat_seconds)
        return json.dumps(
            {"type": type_, "ts": time.time(), "worker": self.hostname, "data": data},
            separators=(",", ":"),
            default=str,
        )

    def send(self, type_: str) -> None:
        try:
            # Through Sentinel: a primary failed over while it runs on would take these
            # beats until it is demoted, and the new one would think the worker gone.
            primary_moved(self.redis)
            k = self.settings.keys
            self._script(
                keys=[k.worker_beats, k.workers, k.workers_offline, k.workers_expired],
                args=[
                    self.hostname,
                    self.payload(type_),
                    k.workers_channel,
                    "1" if type_ == "worker.offline" else "0",
                ],
            )
        except Exception as exc:  # Redis away: the next beat tries again
            log.warning("%s for %s not sent: %s", type_, self.hostname, exc)

    def _run(self) -> None:
        interval = self.settings.heartbeat_seconds
        while not self._stop.wait(interval):
            announce_waiting()
            self.send("worker.heartbeat")


def announce_waiting() -> None:
    """job.received for the tasks waiting in this worker's prefetch buffer (the pool
    child says it for the others as they start)."""
    try:
        waiting = [
            r for r in list(worker_state.reserved_requests) if r not in worker_state.active_requests
        ]
    except RuntimeError:  # the sets changed under us: next beat
        return
    for request in waiting:
        announce_received(request)


_heartbeat: Heartbeat | None = None


@signals.worker_ready.connect
def on_worker_ready(sender: Any = None, **kwargs: Any) -> None:
    global _heartbeat
    if _heartbeat is not None:
        return
    if STATS.counters is None:  # imported after worker_init: count in this process only
        from workers.shared_counters import SharedCounters

        STATS.counters = SharedCounters(sender.app.tasks.keys(), slots=1)
    _heartbeat = Heartbeat(sender)
    _heartbeat.start()


@signals.worker_shutdown.connect
def on_worker_shutdown(**kwargs: Any) -> None:
    global _heartbeat
    if _heartbeat is not None:
        _heartbeat.stop()
        _heartbeat = None
