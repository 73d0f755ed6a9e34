"""A RabbitMQ virtual host of a test's own, on the machine's RabbitMQ.

`AGENTDECK_TEST_AMQP_URL` (default guest on 127.0.0.1:5672) names the server.
With `rabbitmqctl` at hand (RabbitMQ runs on this machine), each test module
gets a new vhost, deleted after; without it, the URL's own vhost is shared and
the tests keep apart by queue names of their own (`unique_queue`).
When the server does not answer the tests are skipped, unless
`AGENTDECK_TEST_REQUIRE_RABBITMQ=1` (CI, which starts RabbitMQ) makes it a failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote, urlsplit

import pytest
from kombu import Connection

DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672//"


def base_url() -> str:
    return os.environ.get("AGENTDECK_TEST_AMQP_URL") or DEFAULT_URL


def answers(url: str) -> bool:
    try:
        with Connection(url, connect_timeout=3) as conn:
            conn.ensure_connection(max_retries=1)
        return True
    except Exception:
        return False


def require_rabbitmq() -> str:
    """The server's URL; skip (or fail, in CI) when it does not answer."""
    url = base_url()
    if answers(url):
        return url
    message = f"RabbitMQ does not answer at {url.split('@')[-1]}"
    if os.environ.get("AGENTDECK_TEST_REQUIRE_RABBITMQ") == "1":
        pytest.fail(message)
    pytest.skip(message)


def _ctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


@contextmanager
def own_vhost(url: str) -> Iterator[str]:
    """`url` on a new vhost (deleted after) when rabbitmqctl can make one; else `url`."""
    local = urlsplit(url).hostname in ("127.0.0.1", "localhost", "::1")
    if not local or shutil.which("rabbitmqctl") is None:
        yield url
        return
    user = urlsplit(url).username or "guest"
    vhost = f"agentdeck-test-{uuid.uuid4().hex[:10]}"
    _ctl("add_vhost", vhost)
    try:
        _ctl("set_permissions", "-p", vhost, user, ".*", ".*", ".*")
        u = urlsplit(url)
        yield f"{u.scheme}://{u.netloc}/{quote(vhost, safe='')}"
    finally:
        _ctl("delete_vhost", vhost)


def unique_queue(label: str) -> str:
    return f"t-{label}-{uuid.uuid4().hex[:8]}"
