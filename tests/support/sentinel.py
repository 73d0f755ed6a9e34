"""A Redis Sentinel set of a test's own: one primary, one replica, three Sentinels.

Every server is a `redis-server` child on a free port, in a temporary folder
of its own, with its log in the test output folder. Sentinels judge the
primary down after 1 s (`down-after-milliseconds`), so a failover takes a few
seconds. `url` is the set's Sentinel URL, in the form Agentdeck takes (see
workers/redis_urls.py).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import redis

from launcher.net import free_port, wait_until

MASTER = "agentdeck-test"
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 5000
SERVER = shutil.which("redis-server") or "redis-server"


class SentinelSet:
    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.dir = Path(tempfile.mkdtemp(prefix="agentdeck-sentinel-"))
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.ports: dict[str, int] = {}

    @property
    def sentinel_ports(self) -> list[int]:
        return [p for name, p in self.ports.items() if name.startswith("sentinel")]

    @property
    def url(self) -> str:
        parts = [f"sentinel://127.0.0.1:{p}/0" for p in self.sentinel_ports]
        return ";".join(parts) + f"?master_name={MASTER}"

    def _spawn(self, name: str, *args: str) -> None:
        port = free_port()
        self.ports[name] = port
        folder = self.dir / name
        folder.mkdir()
        log = self.log_dir / f"sentinel-set-{name}.log"
        if args and args[0] == "--sentinel":
            conf = folder / "sentinel.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {folder}\nlogfile {log}\n"
                f"sentinel monitor {MASTER} 127.0.0.1 {self.ports['primary']} 2\n"
                f"sentinel down-after-milliseconds {MASTER} {DOWN_AFTER_MS}\n"
                f"sentinel failover-timeout {MASTER} {FAILOVER_TIMEOUT_MS}\n"
                f"sentinel parallel-syncs {MASTER} 1\n"
            )
            argv = [SERVER, str(conf), "--sentinel"]
        else:
            argv = [
                SERVER,
                *("--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder)),
                *("--save", "", "--appendonly", "no", "--logfile", str(log)),
                *args,
            ]
        self.procs[name] = subprocess.Popen(argv, start_new_session=True)
        assert wait_until(lambda: self._pings(port), 10), f"{name} did not start"

    @staticmethod
    def _pings(port: int) -> bool:
        try:
            with redis.Redis(port=port, socket_timeout=1, socket_connect_timeout=1) as r:
                return bool(r.ping())
        except redis.RedisError:
            return False

    def start(self) -> SentinelSet:
        try:
            self._spawn("primary")
            self._spawn("replica", "--replicaof", "127.0.0.1", str(self.ports["primary"]))
            assert wait_until(
                lambda: (
                    self.client("replica").info("replication").get("master_link_status") == "up"
                ),
                20,
            ), "the replica did not sync"
            for i in (1, 2, 3):
                self._spawn(f"sentinel{i}", "--sentinel")
            # Every Sentinel knows the replica and the other two: a failover can happen.
            assert wait_until(self._ready, 30), "the Sentinels did not find each other"
        except BaseException:
            self.stop()
            raise
        return self

    def _ready(self) -> bool:
        for port in self.sentinel_ports:
            with redis.Redis(port=port, socket_timeout=1, decode_responses=True) as s:
                try:
                    if len(s.sentinel_slaves(MASTER)) < 1 or len(s.sentinel_sentinels(MASTER)) < 2:
                        return False
                except redis.RedisError:
                    return False
        return True

    def client(self, name: str) -> redis.Redis:
        return redis.Redis(port=self.ports[name], socket_timeout=5, decode_responses=True)

    def primary_port(self) -> int | None:
        """The primary's port, as the first Sentinel that answers sees it."""
        for port in self.sentinel_ports:
            with (
                redis.Redis(port=port, socket_timeout=1, decode_responses=True) as s,
                contextlib.suppress(redis.RedisError),
            ):
                addr = s.sentinel_get_master_addr_by_name(MASTER)
                if addr:
                    return int(addr[1])
        return None

    def name_of(self, port: int) -> str:
        return next(n for n, p in self.ports.items() if p == port)

    def kill(self, name: str) -> float:
        """SIGKILL one server by its PID; returns the monotonic time it was sent."""
        proc = self.procs[name]
        os.kill(proc.pid, signal.SIGKILL)
        at = time.monotonic()
        proc.wait(10)
        return at

    def force_failover(self) -> float:
        """`SENTINEL FAILOVER`: the replica is promoted, the primary made its replica."""
        with redis.Redis(port=self.sentinel_ports[0], socket_timeout=5) as s:
            at = time.monotonic()
            s.execute_command("SENTINEL", "FAILOVER", MASTER)
        return at

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGKILL)
                proc.wait(10)
        self.procs.clear()
        shutil.rmtree(self.dir, ignore_errors=True)
