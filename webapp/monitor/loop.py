"""The web side's monitoring thread: offline detection, dashboard samples, shared gauges.

Every web process runs one; the work that must happen once (marking a worker
offline, taking a dashboard sample) is claimed in Redis, so any number of
web processes agree and none is special.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time

from webapp.monitor import dashboard, worker_status
from webapp.monitor.latency import LatencyHistogram
from webapp.services import Services, text
from workers import lua

log = logging.getLogger("agentdeck.monitor")

WS_REPORT_EVERY = 2.0
WS_STALE_AFTER = 10.0


class MonitorLoop:
    def __init__(self, svc: Services) -> None:
        self.svc = svc
        self.latency = LatencyHistogram()
        self.process_id = f"{socket.gethostname()}:{os.getpid()}"
        self._expire = svc.redis.register_script(lua.EXPIRE_WORKER)
        self._stopping = threading.Event()
        self.errors = 0

    def start(self) -> None:
        threading.Thread(target=self._run, name="agentdeck-monitor", daemon=True).start()

    def stop(self) -> None:
        self._stopping.set()

    def _run(self) -> None:
        next_report = 0.0
        while not self._stopping.wait(worker_status.CHECK_EVERY):
            now = time.monotonic()
            try:
                worker_status.expire_silent(self.svc, self._expire)
                self.latency.flush(self.svc.redis, self.svc.settings.keys.latency)
                if now >= next_report:
                    next_report = now + WS_REPORT_EVERY
                    self.report_ws_clients()
                dashboard.take_sample(self.svc)  # once per time slot, by whoever is first
            except Exception as exc:  # Redis away, a bug: log, go on next tick
                self.errors += 1
                if self.errors % 20 == 1:
                    log.warning("monitor tick failed: %r", exc)

    def report_ws_clients(self) -> None:
        count = len(self.svc.hub.clients)
        self.svc.redis.hset(
            self.svc.settings.keys.ws_clients, self.process_id, f"{count} {time.time()}"
        )


def ws_clients_total(svc: Services) -> int:
    """WebSocket clients of every live web process (stale reports are dropped)."""
    key = svc.settings.keys.ws_clients
    total = 0
    now = time.time()
    stale = []
    for field, raw in svc.redis.hgetall(key).items():
        try:
            count, ts = text(raw).split()
            if now - float(ts) > WS_STALE_AFTER:
                stale.append(field)
                continue
            total += int(count)
        except (ValueError, AttributeError):
            stale.append(field)
    if stale:
        svc.redis.hdel(key, *stale)
    return total
