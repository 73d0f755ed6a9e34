"""The test platform itself: isolated Redis database, migrated SQL, worker, web."""

from __future__ import annotations

import json
import urllib.request

import redis
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine

from tests.support import Platform, WebService, WorkerService
from workers.settings import get_settings


def test_process_env_points_at_the_platform(platform: Platform) -> None:
    settings = get_settings()
    assert settings.redis_url == platform.redis_url
    assert settings.sql_url == platform.database_url


def test_redis_is_ours(redis_client: redis.Redis, platform: Platform) -> None:
    assert redis_client.ping()
    if platform.embedded_redis is None:  # a shared server: a database index of our own
        assert not platform.redis_url.endswith("/0")


def test_sql_is_migrated(sql_engine: Engine) -> None:
    tables = set(inspect(sql_engine).get_table_names())
    assert {"jobs", "events", "users", "api_tokens", "alembic_version"} <= tables
    if sql_engine.dialect.name == "sqlite":
        with sql_engine.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"


def test_worker_answers_ping(worker: WorkerService) -> None:
    from workers.celery_app import app

    replies = app.control.ping(destination=[worker.hostname], timeout=5.0)
    assert any(worker.hostname in reply for reply in replies), replies


def test_web_restarts_on_the_same_url(web: WebService) -> None:
    url = web.url
    web.stop()
    assert not web.healthy()
    web.start()
    assert web.url == url and web.healthy()
    web.kill()
    assert not web.running
    web.start()
    with urllib.request.urlopen(web.url + "/healthz", timeout=5) as resp:
        assert resp.status == 200
        json.loads(resp.read() or b"{}")
