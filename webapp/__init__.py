"""Agentdeck's web app: `create_app()` builds it; one blueprint per surface.

This module imports nothing heavy at the top: gunicorn imports the `webapp`
package in its master process to read `webapp.gunicorn_conf`, and anything
imported there (redis imports ssl) is imported before gevent patches the
workers, which gevent then warns about. The app is built in each worker,
after the patching.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

    from workers.settings import Settings


def _app_import_error() -> type[Exception]:
    """gunicorn's "the app failed to load" (it prints the message and stops, no
    traceback, no respawn loop); a plain RuntimeError elsewhere."""
    try:
        from gunicorn.errors import AppImportError
    except ImportError:  # pragma: no cover (gunicorn is a runtime dependency)
        return RuntimeError
    return AppImportError


def create_app(settings: Settings | None = None, *, background: bool = True) -> Flask:
    """The app; `background=False` leaves its loops unstarted (`stop_background` stops them).

    Refuses to build (`AgentModulesUnavailable`) when a module of agents in
    AGENTDECK_AGENT_MODULES does not import: a web server that accepted jobs no
    worker can run would only fail them later."""
    from flask import Flask

    from webapp import psycopg_wait
    from webapp.auth import init_auth
    from webapp.auth.sockets import SocketWarden
    from webapp.errors import register_error_handlers
    from webapp.hub import Hub
    from webapp.janitor import Janitor
    from webapp.lost_workers import LostWorkers
    from webapp.monitor import init_monitor
    from webapp.monitor.latency import DeliveryLatency
    from webapp.pinger import Pinger
    from webapp.recorder import Recorder, WakeRecorder
    from webapp.services import Services
    from webapp.waits import Waker
    from workers.celery_app import app as celery_app  # also connects before_task_publish
    from workers.events_redis import events_redis
    from workers.hooks import Hooks
    from workers.models import make_engine, make_sessionmaker
    from workers.runtime import AgentModuleError, load_agents
    from workers.settings import get_settings

    settings = settings or get_settings()
    psycopg_wait.install()  # under gevent (gunicorn's worker) only
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        load_agents(settings.agent_modules)
    except AgentModuleError as exc:
        raise AgentModulesUnavailable(f"agentdeck web: not starting: {exc}") from exc
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes

    # Agentdeck's keys and channels: the event bus's Redis, not necessarily the broker's.
    client = events_redis(
        settings,
        socket_timeout=10,
        socket_connect_timeout=3,
        health_check_interval=30,
        pooled_for_many=True,  # thousands of greenlets: wait for a connection, never fail
    )
    engine = make_engine(settings.sql_url)
    sessions = make_sessionmaker(engine)
    hooks = Hooks()
    hub = Hub(settings, client, sessions, hooks)
    recorder = Recorder(settings, client, sessions)
    app.extensions["agentdeck"] = svc = Services(
        settings=settings,
        redis=client,
        engine=engine,
        sessions=sessions,
        celery=celery_app,
        hub=hub,
        recorder=recorder,
        hooks=hooks,
    )

    svc.accounts = init_auth(app, settings, sessions)
    svc.janitor = Janitor(svc, hooks)
    register_error_handlers(app)
    _register_blueprints(app)
    monitor = init_monitor(app)  # Flower-style monitoring (webapp/monitor/)
    # Every hook of the app (hub: on_envelope; janitor: every_tick, every_scan).
    hooks.add(
        WakeRecorder(recorder), DeliveryLatency(monitor.latency), LostWorkers(svc), Waker(svc)
    )
    # Every background thread of the app.
    wardens = (SocketWarden(hub, svc.accounts), Pinger(hub))
    svc.loops.add(hub, hub.latest, recorder, svc.janitor, monitor, *wardens)
    if background:
        svc.loops.start()
    return app


class AgentModulesUnavailable(_app_import_error()):  # type: ignore[misc]
    """A module of agents did not import: the web server does not start."""


def stop_background(app: Flask, timeout: float = 5.0) -> list[str]:
    """Stop the app's loops (tests); the names of those still running after `timeout`."""
    from webapp.services import Services

    svc: Services = app.extensions["agentdeck"]
    return svc.loops.stop(timeout)


def _register_blueprints(app: Flask) -> None:
    from webapp import api, health, views, ws

    app.register_blueprint(health.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(views.bp)
    ws.sock.init_app(app)
    app.config["SOCK_SERVER_OPTIONS"] = ws.SERVER_OPTIONS
    app.before_request(ws.decline_deflate)
