"""Settings from the environment, read once into a frozen object."""

from __future__ import annotations

import os
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from workers.keys import DEFAULT_PREFIX, Keys


class SettingsError(ValueError):
    """An environment variable holds a value Agentdeck cannot use."""


def _int(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from exc


def _float(env: dict[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from exc


def _flag(env: dict[str, str], name: str) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise SettingsError(f"{name} must be 1 or 0, got {raw!r}")


def _names(env: dict[str, str], name: str) -> tuple[str, ...]:
    """A comma-separated list, blanks dropped."""
    return tuple(n.strip() for n in env.get(name, "").split(",") if n.strip())


@dataclass(frozen=True)
class Settings:
    redis_url: str = "redis://127.0.0.1:6379/0"  # Celery's broker and result backend
    events_url: str = ""  # the event bus (every key of workers.keys); "": redis_url
    database_url: str = ""
    data_dir: Path = Path(".agentdeck")
    host: str = "127.0.0.1"
    port: int = 8000
    redis_port: int = 0  # 0: pick a free port for the embedded server
    admin_token: str = ""
    agent_modules: tuple[str, ...] = ()
    queues: tuple[str, ...] = ()  # queues jobs may be sent to (empty: see webapp/queues.py)
    key_prefix: str = DEFAULT_PREFIX
    replay_max_events: int = 10_000
    replay_ttl_seconds: int = 7 * 24 * 3600
    publish_buffer_max: int = 100_000
    publish_linger_ms: float = 200.0
    max_body_bytes: int = 1_048_576
    max_bulk_jobs: int = 1000  # submissions in one POST /api/jobs/bulk
    client_queue_bytes: int = 4 * 1_048_576
    redis_connections: int = 200  # a web process's connections to the event bus, at most
    heartbeat_seconds: float = 2.0
    worker_expiry_seconds: float = 5.0
    allowed_hosts: tuple[str, ...] = ()  # () : this machine's names and `host`
    allowed_origins: tuple[str, ...] = ()  # besides the page's own origin
    insecure_no_auth: bool = False
    proxy_hops: int = 0  # reverse proxies in front whose X-Forwarded-* to trust
    run_time_limit: float = 3600.0  # seconds an agent may run unless it says otherwise
    keys: Keys = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "keys", Keys(self.key_prefix))
        if not self.events_url:
            object.__setattr__(self, "events_url", self.redis_url)
        if not 0 < self.run_time_limit < float("inf"):
            raise SettingsError(
                f"AGENTDECK_RUN_TIME_LIMIT must be a positive number, got {self.run_time_limit}"
            )

    @property
    def sql_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'agentdeck.db').resolve()}"

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if environ is None else environ)
        return cls(
            redis_url=env.get("REDIS_URL") or cls.redis_url,
            events_url=env.get("AGENTDECK_EVENTS_URL", ""),
            database_url=env.get("DATABASE_URL", ""),
            data_dir=Path(env.get("AGENTDECK_DATA_DIR") or ".agentdeck"),
            host=env.get("AGENTDECK_HOST") or cls.host,
            port=_int(env, "AGENTDECK_PORT", cls.port),
            redis_port=_int(env, "AGENTDECK_REDIS_PORT", 0),
            admin_token=env.get("AGENTDECK_ADMIN_TOKEN", ""),
            agent_modules=_names(env, "AGENTDECK_AGENT_MODULES"),
            queues=_names(env, "AGENTDECK_QUEUES"),
            key_prefix=env.get("AGENTDECK_KEY_PREFIX") or DEFAULT_PREFIX,
            replay_max_events=_int(env, "AGENTDECK_REPLAY_MAX_EVENTS", cls.replay_max_events),
            replay_ttl_seconds=_int(env, "AGENTDECK_REPLAY_TTL", cls.replay_ttl_seconds),
            publish_buffer_max=_int(env, "AGENTDECK_PUBLISH_BUFFER", cls.publish_buffer_max),
            publish_linger_ms=_float(env, "AGENTDECK_PUBLISH_LINGER_MS", cls.publish_linger_ms),
            max_body_bytes=_int(env, "AGENTDECK_MAX_BODY_BYTES", cls.max_body_bytes),
            max_bulk_jobs=_int(env, "AGENTDECK_MAX_BULK_JOBS", cls.max_bulk_jobs),
            client_queue_bytes=_int(env, "AGENTDECK_CLIENT_QUEUE_BYTES", cls.client_queue_bytes),
            redis_connections=_int(env, "AGENTDECK_REDIS_CONNECTIONS", cls.redis_connections),
            heartbeat_seconds=_float(env, "AGENTDECK_HEARTBEAT", cls.heartbeat_seconds),
            worker_expiry_seconds=_float(env, "AGENTDECK_WORKER_EXPIRY", cls.worker_expiry_seconds),
            allowed_hosts=_names(env, "AGENTDECK_ALLOWED_HOSTS"),
            allowed_origins=_names(env, "AGENTDECK_ALLOWED_ORIGINS"),
            insecure_no_auth=_flag(env, "AGENTDECK_INSECURE_NO_AUTH"),
            proxy_hops=_int(env, "AGENTDECK_PROXY_HOPS", 0),
            run_time_limit=_float(env, "AGENTDECK_RUN_TIME_LIMIT", cls.run_time_limit),
        )


_current: Settings | None = None


def get_settings() -> Settings:
    """The process-wide settings, read from the environment on first use."""
    global _current
    if _current is None:
        _current = Settings.from_env()
    return _current


# Secrets only web processes need. Workers run agents' code, which can read its
# process's environment: the launcher does not give them these, and a worker
# drops them at start-up (`drop_web_secrets`) in case something else did.
WEB_ONLY_SECRETS = ("AGENTDECK_ADMIN_TOKEN",)


def without_web_secrets(env: Mapping[str, str]) -> dict[str, str]:
    """`env` minus `WEB_ONLY_SECRETS`: the environment for a worker."""
    return {k: v for k, v in env.items() if k not in WEB_ONLY_SECRETS}


def drop_web_secrets(environ: MutableMapping[str, str] | None = None) -> list[str]:
    """Remove `WEB_ONLY_SECRETS` from `environ` (os.environ) and from the cached
    settings; returns the names that were there."""
    global _current
    env = os.environ if environ is None else environ
    dropped = [name for name in WEB_ONLY_SECRETS if env.pop(name, None) is not None]
    if _current is not None and _current.admin_token:
        _current = replace(_current, admin_token="")
    return dropped
