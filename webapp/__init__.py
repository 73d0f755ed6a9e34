"""Agentdeck's web app: `create_app()` builds it; one blueprint per surface."""

from __future__ import annotations

import logging

import redis
from flask import Flask

from webapp.auth import init_auth
from webapp.errors import register_error_handlers
from webapp.monitor import init_monitor
from webapp.services import Services
from workers.models import make_engine, make_sessionmaker
from workers.settings import Settings, get_settings


def create_app(settings: Settings | None = None, *, background: bool = True) -> Flask:
    """The app; `background=False` leaves the hub's and recorder's threads unstarted."""
    from webapp.auth.sockets import SocketWarden
    from webapp.hub import Hub
    from webapp.janitor import Janitor
    from webapp.lost_workers import check_lost_workers, check_vanished_workers
    from webapp.recorder import Recorder
    from workers.celery_app import app as celery_app  # also connects before_task_publish
    from workers.runtime import load_agents

    settings = settings or get_settings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.config["SOCK_SERVER_OPTIONS"] = {"ping_interval": 25, "max_message_size": 1 << 20}
    load_agents(settings.agent_modules)

    client = redis.Redis.from_url(
        settings.redis_url, socket_timeout=10, socket_connect_timeout=3, health_check_interval=30
    )
    engine = make_engine(settings.sql_url)
    sessions = make_sessionmaker(engine)
    hub = Hub(settings, client, sessions)
    recorder = Recorder(settings, client, sessions)
    hub.on_event = recorder.wake
    app.extensions["agentdeck"] = svc = Services(
        settings=settings,
        redis=client,
        engine=engine,
        sessions=sessions,
        celery=celery_app,
        hub=hub,
        recorder=recorder,
    )

    svc.accounts = init_auth(app, settings, sessions)
    svc.janitor = Janitor(svc)
    svc.janitor.checks.append(lambda: check_lost_workers(svc))
    svc.janitor.scans.append(lambda: check_vanished_workers(svc))
    register_error_handlers(app)
    _register_blueprints(app)
    init_monitor(app, background=background)  # Flower-style monitoring (webapp/monitor/)
    if background:
        SocketWarden(hub, svc.accounts).start()
        hub.start()
        recorder.start()
        svc.janitor.start()
    return app


def _register_blueprints(app: Flask) -> None:
    from webapp import api, health, views, ws

    app.register_blueprint(health.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(views.bp)
    ws.sock.init_app(app)
