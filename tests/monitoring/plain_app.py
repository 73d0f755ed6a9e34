"""A Celery app that knows nothing of Agentdeck but the one documented line.

It is what a user's own project looks like: its own tasks, its own queue,
and `import workers.monitoring` to turn Agentdeck's monitoring on.
"""

from __future__ import annotations

import os
import time
from typing import Any

import redis
from celery import Celery

import workers.monitoring  # noqa: F401  (the one line: docs/monitoring.md)

BACKEND = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
BROKER = os.environ.get("AGENTDECK_BROKER_URL") or BACKEND  # the broker Agentdeck's web uses
QUEUE = "plain"

app = Celery("plain_app", broker=BROKER, backend=BACKEND)
app.conf.update(
    task_default_queue=QUEUE,
    task_serializer="json",
    accept_content=["json"],
    task_acks_late=True,
    worker_prefetch_multiplier=1,
    broker_connection_retry_on_startup=True,
)


@app.task(name="plain.add")
def add(x: int, y: int) -> int:
    return x + y


@app.task(name="plain.boom")
def boom(message: str = "boom") -> None:
    raise ValueError(message)


@app.task(name="plain.nap")
def nap(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@app.task(name="plain.hold")
def hold(key: str, timeout: float = 60) -> str:
    """Runs until a test releases `key` (see `release`), or for `timeout` seconds."""
    got = redis.Redis.from_url(BACKEND).blpop([f"plain-hold:{key}"], timeout=timeout)
    return "released" if got else "timed out"


def release(key: str) -> None:
    """Lets the `hold` task of `key` finish."""
    redis.Redis.from_url(BACKEND).rpush(f"plain-hold:{key}", 1)


@app.task(name="plain.greet")
def greet(name: str, user: int = 0) -> str:
    return f"hello {name} #{user}"


@app.task(name="plain.flaky")
def flaky(key: str) -> str:
    """Fails the first time it runs for `key`, succeeds after."""
    runs = redis.Redis.from_url(BACKEND).incr(f"plain-flaky:{key}")
    if runs == 1:
        raise RuntimeError(f"first run of {key} fails")
    return f"{key} ok on run {runs}"


@app.task(name="plain.retry_once", bind=True)
def retry_once(self: Any, key: str) -> str:
    """Asks to be retried (at once) the first time it runs for `key`, succeeds after."""
    runs = redis.Redis.from_url(BACKEND).incr(f"plain-retry:{key}")
    if runs == 1:
        raise self.retry(countdown=0)
    return f"{key} ok on run {runs}"
