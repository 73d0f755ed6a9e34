"""`python -m launcher` end to end: it starts everything and Ctrl-C stops everything."""

from __future__ import annotations

import os
import re
import signal
import stat
import sys
from pathlib import Path

import psutil
import pytest
import redis
import requests
from redis.backoff import NoBackoff
from redis.retry import Retry

from launcher.commands import REPO_ROOT
from launcher.net import free_port, http_ok, wait_until
from launcher.processes import ManagedProcess

URL_LINE = r"Agentdeck is running"
# What a normal start and stop must not print. Celery's SecurityWarning about running a
# worker as root is the one exception, and only when this test does run as root (it is
# true then: agents' code would run as root; docs/operations.md says so).
NOISE = re.compile(r"warning|traceback|exception ignored", re.IGNORECASE)
ROOT_WARNING = re.compile(
    r"^\s*worker \| \S+/celery/platforms\.py:\d+: SecurityWarning: You're running the worker "
    r"with superuser privileges.*?_warn_or_raise_security_error\(egid, euid, gid, uid,$",
    re.MULTILINE | re.DOTALL,
)
PLATFORM_VARS = ("REDIS_URL", "DATABASE_URL", "AGENTDECK_DATA_DIR", "AGENTDECK_PORT",
                 "AGENTDECK_HOST", "AGENTDECK_REDIS_PORT")  # fmt: skip


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _the_login_link_works_once(line: str) -> None:
    link = re.search(r"(http://\S+/login\?token=\S+)", line)
    assert link, line
    session = requests.Session()
    session.trust_env = False
    first = session.get(link.group(1) + "&next=/agents", allow_redirects=False, timeout=10)
    assert first.status_code == 302 and first.headers["Location"] == "/agents"
    me = session.get(link.group(1).split("/login")[0] + "/api/me", timeout=10).json()
    assert me["role"] == "admin" and me["via"] == "session"
    again = requests.get(link.group(1), allow_redirects=False, timeout=10)
    assert again.status_code == 401


def test_launcher_refuses_a_network_address_without_an_admin(
    tmp_path: Path, output_dir: Path
) -> None:
    # given a fresh data directory and no admin token
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in PLATFORM_VARS and k != "AGENTDECK_ADMIN_TOKEN"
    }
    argv = [
        sys.executable, "-m", "launcher", "--host", "0.0.0.0", "--port", str(free_port()),
        "--redis-port", str(free_port()), "--data-dir", str(tmp_path / "data"), "--no-worker",
    ]  # fmt: skip
    launcher = ManagedProcess(
        "launcher-open", argv, env=env, cwd=REPO_ROOT, log_path=output_dir / "launcher-open.log"
    )
    # when it is asked to serve every address, then it refuses, saying what to do
    launcher.start()
    try:
        assert launcher.wait(timeout=60) == 1
        assert "refusing to serve 0.0.0.0 with no admin account" in launcher.tail()
    finally:
        launcher.kill()


def test_launcher_runs_the_platform_and_ctrl_c_stops_it(tmp_path: Path, output_dir: Path) -> None:
    has_web = (REPO_ROOT / "webapp" / "__init__.py").exists()
    port, redis_port = free_port(), free_port()
    # The launcher's defaults: embedded Valkey and SQLite, whatever this session uses.
    env = {k: v for k, v in os.environ.items() if k not in PLATFORM_VARS}
    env["AGENTDECK_ADMIN_TOKEN"] = token = "launcher-test-token"
    argv = [
        sys.executable, "-m", "launcher", "--host", "127.0.0.1", "--port", str(port),
        "--redis-port", str(redis_port), "--data-dir", str(tmp_path / "data"),
        "--workers", "1", "--worker-name", f"launcher-test-{port}@%h",
    ]  # fmt: skip
    if not has_web:
        argv.append("--no-web")
    launcher = ManagedProcess(
        "launcher", argv, env=env, cwd=REPO_ROOT, log_path=output_dir / "launcher.log"
    )
    launcher.start()
    try:
        line = launcher.wait_for_line(URL_LINE, timeout=90)
        if has_web:
            assert f"http://127.0.0.1:{port}/" in line
            assert http_ok(f"http://127.0.0.1:{port}/healthz")
            _the_login_link_works_once(launcher.wait_for_line(r"log in: ", timeout=10))
        assert (tmp_path / "data" / "agentdeck.db").exists()
        assert "ready." in (tmp_path / "data" / "logs" / "worker.log").read_text()

        assert launcher.pid is not None
        children = psutil.Process(launcher.pid).children(recursive=True)
        names = " ".join(" ".join(c.cmdline()) for c in children)
        assert "valkey-server" in names and "celery" in names
        if has_web:
            assert "gunicorn" in names

        # The worker (agents' code) gets no admin token; the web server does.
        for child in children:
            cmdline = " ".join(child.cmdline())
            if "celery" in cmdline:
                assert "AGENTDECK_ADMIN_TOKEN" not in child.environ(), cmdline
            elif "gunicorn" in cmdline:
                assert child.environ().get("AGENTDECK_ADMIN_TOKEN") == token, cmdline
        # Valkey wants a password, kept private and never printed.
        valkey_dir = tmp_path / "data" / "valkey"
        password = (valkey_dir / "password").read_text().strip()
        assert stat.S_IMODE(valkey_dir.stat().st_mode) == 0o700
        assert stat.S_IMODE((valkey_dir / "password").stat().st_mode) == 0o600
        assert "redis://:***@127.0.0.1" in launcher.tail(200)
        assert password not in launcher.tail(200)
        anonymous = redis.Redis(port=redis_port, retry=Retry(NoBackoff(), 0))
        with pytest.raises((redis.AuthenticationError, redis.ResponseError)):
            anonymous.ping()
        anonymous.close()

        if has_web:
            _cancel_a_job_and_wait_on_a_result(f"http://127.0.0.1:{port}", token)

        # Ctrl-C in a terminal: SIGINT to the launcher's whole process group.
        os.killpg(launcher.pid, signal.SIGINT)
        assert launcher.wait(timeout=30) == 0, launcher.tail()
        assert wait_until(lambda: not any(_alive(c) for c in children), timeout=15), [
            c.pid for c in children if _alive(c)
        ]
        assert "stopped" in launcher.tail()
        # A normal start and stop (with a cancel in between) is quiet.
        output = (output_dir / "launcher.log").read_text()
        if os.geteuid() == 0:
            output = ROOT_WARNING.sub("", output, count=1)
        assert not NOISE.search(output), output
        # Celery's banner does not ask for -E: Agentdeck's own events monitor the tasks.
        assert "enable -E" not in output and "task events: Agentdeck's own" in output
    finally:
        launcher.kill()


def _cancel_a_job_and_wait_on_a_result(url: str, token: str) -> None:
    """What used to make a stop noisy: a job cancelled, a Celery result waited on."""
    auth = {"Authorization": f"Bearer {token}"}
    job = requests.post(
        url + "/api/jobs", json={"agent": "sleep", "input": {"seconds": 30}}, headers=auth
    )
    assert job.status_code == 202, job.text
    assert job.json()["warnings"] == []  # the launcher's worker consumes its queue
    job_id = job.json()["id"]
    assert wait_until(
        lambda: requests.get(f"{url}/api/jobs/{job_id}", headers=auth).json()["state"] == "STARTED",
        timeout=20,
    )
    assert requests.post(f"{url}/api/jobs/{job_id}/cancel", headers=auth).status_code == 202
    assert wait_until(
        lambda: requests.get(f"{url}/api/jobs/{job_id}", headers=auth).json()["state"] == "REVOKED",
        timeout=20,
    )
    # Flower's apply waits on a Celery result in the web process, then abort.
    applied = requests.post(
        url + "/api/task/apply/agentdeck.run_agent",
        json={"args": ["echo", {"text": "hi", "steps": 0, "delay": 0}]},
        headers=auth,
        timeout=30,
    )
    assert applied.status_code == 200 and applied.json()["result"] == "hi", applied.text
    task_id = applied.json()["task-id"]
    assert requests.get(f"{url}/api/task/result/{task_id}?timeout=2", headers=auth).ok
    assert requests.post(f"{url}/api/task/abort/{task_id}", headers=auth).ok
