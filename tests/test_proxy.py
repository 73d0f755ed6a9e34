"""Two web processes behind the proxy that docker-compose.yml runs (deploy/nginx.conf).

Debian's nginx runs the repo's own server block, with the upstream's `web`
name replaced by the two web processes' addresses: what `docker-compose up
--scale web=2` gives the proxy. Pages, REST and `/ws` go through it; a web
process killed mid-stream costs its clients a reconnect, not an event.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import websocket

from launcher.commands import REPO_ROOT
from launcher.net import free_port, http_ok, wait_until
from tests.support import Platform, WebService, WorkerService, http
from tests.support.follow import JobView
from tests.support.ws import WsClient

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
CONF = REPO_ROOT / "deploy" / "nginx.conf"

pytestmark = [
    pytest.mark.deployment,
    pytest.mark.skipif(
        NGINX is None and not os.environ.get("CI"),
        reason="nginx is not installed (.ci/run installs it)",
    ),
]


def proxy_config(upstreams: list[str], port: int, prefix: Path) -> str:
    """deploy/nginx.conf as the proxy container runs it, on these upstreams and port."""
    server = CONF.read_text()
    lines = "".join(f"    server {u} max_fails=1 fail_timeout=5s;\n" for u in upstreams)
    server, n = re.subn(r"^\s*server web:8000[^\n]*\n", lines, server, flags=re.M)
    assert n == 1, "deploy/nginx.conf no longer names its upstream `web:8000`"
    server, n = re.subn(r"listen 8080;", f"listen 127.0.0.1:{port};", server)
    assert n == 1, "deploy/nginx.conf no longer listens on 8080"
    temp = "".join(
        f"    {kind}_temp_path {prefix / kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    user = "user root;\n" if os.geteuid() == 0 else ""
    return (
        f"{user}worker_processes 1;\npid {prefix / 'nginx.pid'};\n"
        f"error_log {prefix / 'error.log'} info;\nevents {{ worker_connections 1024; }}\n"
        f"http {{\n    access_log off;\n{temp}{server}\n}}\n"
    )


class Proxy:
    def __init__(self, upstreams: list[str], prefix: Path) -> None:
        assert NGINX is not None, "nginx is not installed (.ci/run installs it)"
        prefix.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.prefix = prefix
        conf = prefix / "nginx.conf"
        conf.write_text(proxy_config(upstreams, self.port, prefix))
        self.proc = subprocess.Popen(
            [NGINX, "-c", str(conf), "-p", str(prefix), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=open(prefix / "stderr.log", "wb"),  # noqa: SIM115 (closed with the process)
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 10) -> None:
        ok = wait_until(lambda: http_ok(self.url + "/healthz"), timeout, interval=0.1)
        assert ok, f"nginx did not answer: {(self.prefix / 'error.log').read_text()[-2000:]}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # its own group: master and worker
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)


@pytest.fixture
def two_webs(platform: Platform) -> Iterator[list[WebService]]:
    webs = [
        WebService(platform, name=f"proxied-web-{i}", extra_env={"AGENTDECK_PROXY_HOPS": "1"})
        for i in (1, 2)
    ]
    try:
        for web in webs:
            web.start()
        yield webs
    finally:
        for web in webs:
            web.stop()


@pytest.fixture
def proxy(platform: Platform, two_webs: list[WebService]) -> Iterator[Proxy]:
    p = Proxy([f"127.0.0.1:{w.port}" for w in two_webs], platform.output_dir / "nginx")
    try:
        p.wait_ready()
        yield p
    finally:
        p.stop()


def follow_through(proxy: Proxy, view: JobView, timeout: float = 60) -> int:
    """Follow `view` to its end through the proxy, reconnecting as a browser does;
    how many times the socket died."""
    deaths = 0
    ws = WsClient(proxy.url)
    view.subscribe(ws)
    while True:
        try:
            view.run(ws, timeout=timeout)
            ws.close()
            return deaths
        except (websocket.WebSocketException, OSError):
            deaths += 1
            assert deaths < 5, "the proxy kept dropping the socket"
            ws = WsClient(proxy.url)  # the proxy routes it to a live web process
            view.subscribe(ws)


def test_pages_rest_and_websockets_work_through_the_proxy(
    proxy: Proxy, worker: WorkerService
) -> None:
    # given two web processes behind the proxy
    # when a page, the API and a socket are used through it
    page = http.get(proxy.url + "/", timeout=10)
    r = http.post(
        proxy.url + "/api/jobs", json={"agent": "echo", "input": {"text": "via nginx"}}, timeout=10
    )
    assert r.status_code == 202, r.text
    view = JobView(proxy.url, r.json()["id"])
    # then each answers as it does directly (Host and Origin checks pass the proxy's Host)
    assert page.status_code == 200 and "<html" in page.text.lower()
    assert follow_through(proxy, view) == 0
    assert view.seqs() == list(range(1, view.last + 1))
    assert view.events[view.last]["state"] == "SUCCESS"


def test_a_web_process_killed_mid_stream_costs_its_clients_a_reconnect_not_an_event(
    proxy: Proxy, two_webs: list[WebService], worker: WorkerService
) -> None:
    # given a job streaming output, watched by four clients spread over both web processes
    r = http.post(
        proxy.url + "/api/jobs",
        json={"agent": "chatty", "input": {"count": 300, "delay": 0.01}},
        timeout=10,
    )
    assert r.status_code == 202, r.text
    job_id = r.json()["id"]
    views = [JobView(proxy.url, job_id) for _ in range(4)]
    sockets = [WsClient(proxy.url) for _ in views]
    for view, ws in zip(views, sockets, strict=True):
        view.subscribe(ws)
        view.run(ws, until=lambda v: v.last >= 20, timeout=30)
    # when one web process is SIGKILLed mid-stream
    two_webs[0].kill()
    # then every client ends with every event exactly once, those on the dead one by
    # reconnecting through the proxy to the other
    deaths = 0
    for view, ws in zip(views, sockets, strict=True):
        try:
            view.run(ws, timeout=60)
            ws.close()
        except (websocket.WebSocketException, OSError):
            deaths += 1 + follow_through(proxy, view)
    assert deaths >= 1, "no client was on the killed web process: the proxy did not spread them"
    final = views[0].last
    for view in views:
        assert view.seqs() == list(range(1, final + 1))
        assert view.gaps == 0 and view.dups == 0
        assert view.events[final]["state"] == "SUCCESS"
    outputs: list[Any] = [e for e in views[0].events.values() if e["type"] == "output"]
    assert len(outputs) == 300
