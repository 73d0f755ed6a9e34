"""Flower-style monitoring: workers, tasks, queues, dashboard, Flower's API, /metrics.

`init_monitor(app)` registers the blueprints and, with `background`, starts
the monitoring thread (offline detection, dashboard samples, shared gauges)
and hooks the event delivery latency histogram to the hub.
"""

from __future__ import annotations

from flask import Flask

from webapp.services import Services


def init_monitor(app: Flask, *, background: bool = True) -> None:
    from webapp.monitor import flower_tasks, flower_workers, metrics, monitor_api, pages
    from webapp.monitor.loop import MonitorLoop

    for bp in (flower_tasks.bp, flower_workers.bp, metrics.bp, monitor_api.bp, pages.bp):
        app.register_blueprint(bp)
    svc: Services = app.extensions["agentdeck"]
    loop = MonitorLoop(svc)
    app.extensions["agentdeck_monitor"] = loop
    if hasattr(svc.hub, "on_raw"):
        svc.hub.on_raw = loop.latency.observe
    if background:
        loop.start()
