"""The launcher's options: command-line flags over the environment over defaults."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from workers.settings import Settings


def _default_concurrency() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


@dataclass(frozen=True)
class Options:
    host: str
    port: int
    data_dir: Path  # absolute
    redis_url: str | None  # None: start the embedded server
    redis_port: int  # for the embedded server; 0 picks a free one
    database_url: str
    worker: bool
    web: bool
    concurrency: int
    worker_name: str
    queues: tuple[str, ...]
    web_processes: int
    startup_timeout: float
    stop_timeout: float
    quiet: bool
    insecure_no_auth: bool = False

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def redis_dir(self) -> Path:
        return self.data_dir / "valkey"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m launcher",
        description="Run Agentdeck on this machine: Redis (embedded unless REDIS_URL is set), "
        "migrations, a Celery worker and the web server. Ctrl-C stops everything.",
    )
    p.add_argument("--host", help="web server address (AGENTDECK_HOST, default 127.0.0.1)")
    p.add_argument("--port", type=int, help="web server port (AGENTDECK_PORT, default 8000)")
    p.add_argument(
        "--data-dir",
        type=Path,
        help="SQLite file, Valkey data and logs (AGENTDECK_DATA_DIR, default .agentdeck)",
    )
    p.add_argument(
        "--redis-port",
        type=int,
        help="port of the embedded Redis (AGENTDECK_REDIS_PORT, default: a free one)",
    )
    p.add_argument(
        "--workers",
        "--concurrency",
        dest="concurrency",
        type=int,
        help="worker processes in the Celery pool (AGENTDECK_CONCURRENCY, "
        "default: CPU count, at most 8)",
    )
    p.add_argument(
        "--worker-name",
        help="Celery worker hostname (AGENTDECK_WORKER_NAME, default agentdeck@%%h)",
    )
    p.add_argument("--queues", help="comma-separated queues to consume (default: Celery's)")
    p.add_argument(
        "--web-processes",
        type=int,
        default=1,
        help="gunicorn processes (default 1; each holds thousands of WebSockets)",
    )
    p.add_argument("--no-worker", action="store_true", help="do not start a Celery worker")
    p.add_argument("--no-web", action="store_true", help="do not start the web server")
    p.add_argument("--startup-timeout", type=float, default=60.0, metavar="SECONDS")
    p.add_argument(
        "--stop-timeout",
        type=float,
        default=15.0,
        metavar="SECONDS",
        help="how long children get to stop after SIGTERM before SIGKILL",
    )
    p.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="do not echo the children's output (it is always in the logs)",
    )
    p.add_argument(
        "--insecure-no-auth",
        action="store_true",
        help="no logins: anyone who reaches the web server acts as admin "
        "(AGENTDECK_INSECURE_NO_AUTH=1)",
    )
    return p


def resolve(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> Options:
    env = dict(os.environ if environ is None else environ)
    args = parser().parse_args(argv)
    settings = Settings.from_env(env)
    data_dir = Path(args.data_dir or settings.data_dir).expanduser().resolve()
    database_url = env.get("DATABASE_URL") or f"sqlite:///{data_dir / 'agentdeck.db'}"
    queues = args.queues or env.get("AGENTDECK_QUEUES", "")
    concurrency = args.concurrency or int(env.get("AGENTDECK_CONCURRENCY") or 0)
    return Options(
        host=args.host or settings.host,
        port=settings.port if args.port is None else args.port,
        data_dir=data_dir,
        redis_url=env.get("REDIS_URL") or None,
        redis_port=settings.redis_port if args.redis_port is None else args.redis_port,
        database_url=database_url,
        worker=not args.no_worker,
        web=not args.no_web,
        concurrency=concurrency or _default_concurrency(),
        worker_name=args.worker_name or env.get("AGENTDECK_WORKER_NAME") or "agentdeck@%h",
        queues=tuple(q.strip() for q in queues.split(",") if q.strip()),
        web_processes=max(1, args.web_processes),
        startup_timeout=args.startup_timeout,
        stop_timeout=args.stop_timeout,
        quiet=args.quiet,
        insecure_no_auth=args.insecure_no_auth or settings.insecure_no_auth,
    )
