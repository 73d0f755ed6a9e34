"""Secrets: agents cannot read the admin token; the embedded Valkey wants a password."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from launcher.embedded_redis import PASSWORD_FILE, EmbeddedRedis
from launcher.launch import redact
from launcher.net import free_port
from tests.support import Platform, WebService, WorkerService, http
from tests.support.ws import watch_to_end


def modes(root: Path) -> dict[str, int]:
    """Permission bits of `root` and everything under it, by path relative to `root`."""
    found = {".": stat.S_IMODE(root.stat().st_mode)}
    for path in root.rglob("*"):
        found[str(path.relative_to(root))] = stat.S_IMODE(path.stat().st_mode)
    return found


def private(found: dict[str, int], root: Path) -> bool:
    return all(m == (0o700 if (root / p).is_dir() else 0o600) for p, m in found.items())


def refused(port: int, password: str | None = None) -> bool:
    """Whether a client with `password` (None: none) is refused (a single try)."""
    client = redis.Redis(
        host="127.0.0.1", port=port, password=password, retry=Retry(NoBackoff(), 0)
    )
    try:
        client.set("k", "stolen")
    except (redis.AuthenticationError, redis.ResponseError):
        return True
    finally:
        client.close()
    return False


def test_an_agent_reads_no_admin_token(web: WebService, worker: WorkerService) -> None:
    # given a worker started with the admin token in its environment (as the test
    # platform starts it; the launcher would not even pass it)
    token = os.environ["AGENTDECK_ADMIN_TOKEN"]
    assert token
    # when an agent looks for the token in its process
    r = http.post(f"{web.url}/api/jobs", json={"agent": "secrets_seen", "input": {"needle": token}})
    assert r.status_code == 202, r.text
    end = watch_to_end(web.url, r.json()["id"], timeout=30)[-1]
    # then it finds it neither in os.environ nor in the settings
    assert end["state"] == "SUCCESS", end
    assert end["data"]["result"] == {
        "environ_name": False,
        "environ_value": False,
        "settings": False,
    }


def test_embedded_valkey_wants_its_password_and_keeps_its_files_private(tmp_path: Path) -> None:
    # given a data dir left by an older version: world-readable, with a 0644 file
    data = tmp_path / "valkey"
    data.mkdir(mode=0o755)
    (data / "old.log").write_text("old\n")
    (data / "old.log").chmod(0o644)
    server = EmbeddedRedis(data, port=free_port())
    url = server.start()
    try:
        # then the URL carries a password, and redact() hides it
        password = (data / PASSWORD_FILE).read_text().strip()
        assert len(password) >= 32 and f":{password}@" in url
        assert password not in redact(url) and ":***@" in redact(url)
        # and a client without it is refused, one with a wrong one too
        assert refused(server.port) and refused(server.port, "guess")
        # and the data dir is 0700, every file in it (config, password, data) 0600
        client = redis.Redis.from_url(url)
        client.set("kept", "yes")
        client.close()
        assert {"password", "valkey.conf", "old.log"} <= set(modes(data))
        assert private(modes(data), data), modes(data)
    finally:
        server.stop()
    # when the server starts again on the same data dir
    again = EmbeddedRedis(data, port=free_port())
    url_again = again.start()
    try:
        # then it uses the same password, and its append-only data is still there
        assert f":{password}@" in url_again
        client = redis.Redis.from_url(url_again)
        assert client.get("kept") == b"yes"
        client.close()
        assert any(p.startswith("appendonlydir/") for p in modes(data))
        assert private(modes(data), data), modes(data)
    finally:
        again.stop()


def test_the_session_platform_runs_on_a_password_protected_valkey(platform: Platform) -> None:
    if platform.embedded_redis is None:
        pytest.skip("this session's Redis is REDIS_URL's, not an embedded Valkey")
    # given the session's embedded Valkey (every other test runs jobs through it)
    server = platform.embedded_redis
    # then its URL has the password, and without it a client is refused
    assert f":{server.password}@" in platform.redis_url
    assert refused(server.port)
