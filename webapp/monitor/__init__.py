"""Flower-style monitoring: workers, tasks, queues, dashboard, Flower's API, /metrics.

`init_monitor(app)` registers the blueprints and returns the monitoring loop
(offline detection, dashboard samples, shared gauges, the delivery latency
histogram), which `create_app` starts with the app's other loops.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import Flask

from webapp.services import Services

if TYPE_CHECKING:
    from webapp.monitor.loop import MonitorLoop


def init_monitor(app: Flask) -> MonitorLoop:
    from webapp.monitor import flower_tasks, flower_workers, metrics, monitor_api, pages
    from webapp.monitor.loop import MonitorLoop

    for bp in (flower_tasks.bp, flower_workers.bp, metrics.bp, monitor_api.bp, pages.bp):
        app.register_blueprint(bp)
    svc: Services = app.extensions["agentdeck"]
    return MonitorLoop(svc)
