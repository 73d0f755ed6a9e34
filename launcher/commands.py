"""The command lines of Agentdeck's processes, and the environment they get."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from launcher.net import bind_address

REPO_ROOT = Path(__file__).resolve().parent.parent
# A source checkout (not an installed copy, which lives in site-packages): its
# children need it on PYTHONPATH, since they run in the user's directory.
SOURCE_CHECKOUT = (REPO_ROOT / "pyproject.toml").is_file()
WEB_APP = "webapp:create_app()"
GUNICORN_CONF = "python:webapp.gunicorn_conf"
WORKER_READY = r" ready\.\s*$"  # Celery logs "<hostname> ready." once it consumes


def worker_argv(
    *,
    concurrency: int,
    hostname: str,
    loglevel: str = "info",
    queues: Sequence[str] = (),
    extra: Sequence[str] = (),
) -> list[str]:
    """`celery -A workers worker` (run with this interpreter, so no venv activation needed)."""
    argv = [
        sys.executable, "-m", "celery", "-A", "workers", "worker",
        "-l", loglevel, "--concurrency", str(concurrency), "--hostname", hostname,
    ]  # fmt: skip
    if queues:
        argv += ["-Q", ",".join(queues)]
    return argv + list(extra)


def web_argv(
    *,
    host: str,
    port: int,
    processes: int = 1,
    graceful_timeout: float | None = None,
    extra: Sequence[str] = (),
) -> list[str]:
    """`gunicorn -k gevent` with webapp/gunicorn_conf.py: one process holds thousands of
    WebSockets and, on SIGTERM, tells each of them it is going away."""
    argv = [
        sys.executable, "-m", "gunicorn", "-c", GUNICORN_CONF,
        "-k", "gevent", "-w", str(processes), "-b", bind_address(host, port),
        "--no-control-socket",  # its default path is per user: several servers would share it
    ]  # fmt: skip
    if graceful_timeout is not None:
        argv += ["--graceful-timeout", f"{graceful_timeout:g}"]
    return argv + [*extra, WEB_APP]


def child_env(base: Mapping[str, str], overrides: Mapping[str, str]) -> dict[str, str]:
    """`base` plus `overrides`, unbuffered output and, from a source checkout, the repo
    on PYTHONPATH (an installed Agentdeck is importable as it is)."""
    env = dict(base)
    env.update(overrides)
    env["PYTHONUNBUFFERED"] = "1"
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    if SOURCE_CHECKOUT:
        paths.insert(0, str(REPO_ROOT))
    if paths:
        env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    return env
