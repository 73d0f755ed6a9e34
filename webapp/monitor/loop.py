"""The web side's monitoring thread: offline detection, dashboard samples, shared gauges.

Every web process runs one; the work that must happen once (marking a worker
offline, taking a dashboard sample) is claimed in Redis, so any number of
web processes agree and none is special.
"""

from __future__ import annotations

import time

from webapp.loops import Loop
from webapp.monitor import dashboard, web_counters, worker_status
from webapp.monitor.latency import LatencyHistogram
from webapp.services import Services, text
from workers import lua

WS_REPORT_EVERY = 2.0
WS_STALE_AFTER = 10.0


class MonitorLoop(Loop):
    def __init__(self, svc: Services) -> None:
        every = worker_status.CHECK_EVERY
        super().__init__("monitor", every=every, backoff=every, backoff_cap=2.0, wait_first=True)
        self.svc = svc
        self.latency = LatencyHistogram()
        self.process_id = web_counters.process_id()
        self._expire = svc.redis.register_script(lua.EXPIRE_WORKER)
        self._next_report = 0.0

    def tick(self) -> float | None:
        now = time.monotonic()
        worker_status.expire_silent(self.svc, self._expire)
        self.latency.flush(self.svc.redis, self.svc.settings.keys.latency)
        if now >= self._next_report:
            self._next_report = now + WS_REPORT_EVERY
            self.report_ws_clients()
            web_counters.report(self.svc, self.process_id)
        dashboard.take_sample(self.svc)  # once per time slot, by whoever is first
        return None

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
