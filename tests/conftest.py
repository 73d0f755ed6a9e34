"""Session fixtures: an isolated Agentdeck platform per test session.

The platform (Redis, migrated SQL database, env) is built in
`pytest_sessionstart`, before test modules are imported, and its variables
(REDIS_URL, DATABASE_URL, AGENTDECK_DATA_DIR, AGENTDECK_ADMIN_TOKEN) are put
into this process's environment too, so `celeryconfig`, `get_settings()` and
an in-process `create_app()` all see the test platform. The worker and web
server start on first use; everything is stopped in `pytest_sessionfinish`
(and, should pytest be killed, each child gets SIGTERM from the kernel).
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from sqlalchemy.engine import Engine

from tests.support import Platform, WebService, WorkerService, start_platform
from tests.support.services import Service
from workers.models import make_engine

pytest_plugins = ("tests.support.browser",)

_state: dict[str, object] = {}


UNIT_DIR = Path(__file__).resolve().parent / "unit"


def _only_unit_tests(config: pytest.Config) -> bool:
    """`pytest tests/unit`: pure logic, no services, so no platform is started."""
    paths = [Path(arg.split("::")[0]).resolve() for arg in config.args]
    return bool(paths) and all(p.is_relative_to(UNIT_DIR) for p in paths)


def pytest_sessionstart(session: pytest.Session) -> None:
    if _only_unit_tests(session.config):
        return
    platform = start_platform()
    _state["platform"] = platform
    _state["saved_env"] = {k: os.environ.get(k) for k in platform.exported}
    os.environ.update(platform.exported)
    atexit.register(_teardown)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _teardown()


def _teardown() -> None:
    for key in ("web", "worker"):
        service = _state.pop(key, None)
        if isinstance(service, Service):
            service.stop(timeout=5)
    platform = _state.pop("platform", None)
    if isinstance(platform, Platform):
        platform.close()
    saved = _state.pop("saved_env", None)
    if isinstance(saved, dict):
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _platform() -> Platform:
    platform = _state.get("platform")
    if not isinstance(platform, Platform):
        raise RuntimeError("the test platform is not running (pytest_sessionstart did not run?)")
    return platform


@pytest.fixture(scope="session")
def platform() -> Platform:
    """The session's platform: `.redis_url`, `.database_url`, `.admin_token`, `.env()`..."""
    return _platform()


@pytest.fixture(scope="session")
def platform_env(platform: Platform) -> dict[str, str]:
    """The environment for a child process that should join the platform."""
    return platform.env()


@pytest.fixture(scope="session")
def output_dir(platform: Platform) -> Path:
    """This session's folder under test-output/ (logs are there; put screenshots there)."""
    return platform.output_dir


@pytest.fixture(scope="session")
def admin_token(platform: Platform) -> str:
    return platform.admin_token


@pytest.fixture(scope="session")
def redis_client(platform: Platform) -> Iterator[redis.Redis]:
    """A client (decode_responses=True) on the session's Redis database."""
    client = redis.Redis.from_url(platform.redis_url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture(scope="session")
def sql_engine(platform: Platform) -> Iterator[Engine]:
    """An engine on the session's migrated database (SQLite WAL or PostgreSQL)."""
    engine = make_engine(platform.database_url)
    yield engine
    engine.dispose()


def _service(key: str, factory: type[WorkerService] | type[WebService]) -> Service:
    service = _state.get(key)
    if not isinstance(service, Service):
        service = factory(_platform())
        _state[key] = service
        service.start()
    else:
        service.ensure_running()  # a fault test before may have stopped or killed it
    return service


@pytest.fixture
def worker() -> WorkerService:
    """The session's Celery worker (started once, restarted if a test left it dead)."""
    service = _service("worker", WorkerService)
    assert isinstance(service, WorkerService)
    return service


@pytest.fixture
def web() -> WebService:
    """The session's web server: `.url`, `.ws_url`, `.stop()`, `.kill()`, `.start()`."""
    service = _service("web", WebService)
    assert isinstance(service, WebService)
    return service


@pytest.fixture(scope="module")
def module_web() -> WebService:
    """The session's web server, for module-scoped fixtures (tests still take `web`)."""
    service = _service("web", WebService)
    assert isinstance(service, WebService)
    return service


@pytest.fixture(scope="module")
def module_worker() -> WorkerService:
    """The session's Celery worker, for module-scoped fixtures (tests still take `worker`)."""
    service = _service("worker", WorkerService)
    assert isinstance(service, WorkerService)
    return service
