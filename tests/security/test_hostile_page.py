"""A hostile web page, opened in the browser of a logged-in admin, tries to drive Agentdeck.

The page is served from another site (evil.test, mapped to 127.0.0.1 in Chromium)
and from another port of the same host (same site, so SameSite cookies do go
along). It tries cross-site form posts, no-cors fetches, reading the API and
opening the WebSocket. Each is refused: no job created, cancelled or read.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from playwright.sync_api import Page

from launcher.net import free_port, wait_until
from tests.support import WebService, WorkerService, http

ATTACKS = """
<!doctype html><html><body>
<iframe name="sink" style="display:none"></iframe>
<form id="submit" method="POST" enctype="text/plain" target="sink" action="{base}/api/jobs">
  <input name='{{"agent":"echo","input":{{"text":"pwned","x":"' value='"}}}}'>
</form>
<form id="cancel" method="POST" target="sink" action="{base}/api/jobs/{job}/cancel"></form>
<form id="revoke" method="POST" target="sink"
      action="{base}/api/task/revoke/{job}?terminate=true&signal=SIGKILL"></form>
<form id="limit" method="POST" target="sink"
      action="{base}/api/task/rate-limit/agentdeck.run_agent">
  <input name="ratelimit" value="1/h">
</form>
<script>
const results = {{ws: [], reads: []}};
window.results = results;
async function attack() {{
  for (const id of ["submit", "cancel", "revoke", "limit"]) document.getElementById(id).submit();
  await fetch("{base}/api/jobs", {{method: "POST", mode: "no-cors", credentials: "include",
    headers: {{"Content-Type": "text/plain"}},
    body: JSON.stringify({{agent: "echo", input: {{text: "pwned"}}}})}}).catch(() => null);
  await fetch("{base}/api/jobs/{job}/cancel", {{method: "POST", mode: "no-cors",
    credentials: "include"}}).catch(() => null);
  try {{
    const r = await fetch("{base}/api/jobs/{job}", {{credentials: "include"}});
    results.reads.push(await r.text());
  }} catch (e) {{ results.reads.push("blocked"); }}
  await new Promise((resolve) => {{
    const ws = new WebSocket("{ws}/ws");
    ws.onopen = () => ws.send(JSON.stringify({{op: "subscribe", topic: "job:{job}", since: 0}}));
    ws.onmessage = (m) => results.ws.push(m.data);
    ws.onerror = () => resolve();
    ws.onclose = () => resolve();
    setTimeout(resolve, 3000);
  }});
  window.done = true;
}}
attack();
</script>
</body></html>
"""


class _Hostile(BaseHTTPRequestHandler):
    body = b""

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def hostile_server() -> Iterator[tuple[ThreadingHTTPServer, int]]:
    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), _Hostile)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, port
    server.shutdown()
    server.server_close()


def _job_ids(base: str) -> set[str]:
    jobs = http.get(f"{base}/api/jobs", params={"limit": 200}).json()["jobs"]
    return {j["id"] for j in jobs}


@pytest.mark.parametrize("attacker_host", ["evil.test", "127.0.0.1"])
def test_a_hostile_page_cannot_drive_or_read_agentdeck(
    page: Page,
    web: WebService,
    worker: WorkerService,
    hostile_server: tuple[ThreadingHTTPServer, int],
    attacker_host: str,
) -> None:
    # given an admin logged in, and a job of theirs running for a few seconds
    body = {"agent": "echo", "input": {"text": "secret input", "steps": 3, "delay": 1.0}}
    job = http.post(f"{web.url}/api/jobs", json=body).json()["id"]
    before = _job_ids(web.url)
    page.goto(f"{web.url}/")  # the admin's own tab: the session cookie is set
    server, port = hostile_server
    _Hostile.body = ATTACKS.format(
        base=web.url, ws=web.url.replace("http://", "ws://"), job=job
    ).encode()
    # when the admin opens the hostile page (another site, or another port of this host)
    page.goto(f"http://{attacker_host}:{port}/")
    page.wait_for_function("window.done === true", timeout=20_000)
    results = page.evaluate("window.results")
    # then the page read nothing, over REST or the WebSocket
    assert results["reads"] == ["blocked"], results
    assert not any("secret input" in m for m in results["ws"]), results
    # and the job ran to its end, and no job was made
    final: dict[str, Any] = {}

    def finished() -> bool:
        final.update(http.get(f"{web.url}/api/jobs/{job}").json())
        return final["state"] in ("SUCCESS", "FAILURE", "REVOKED")

    assert wait_until(finished, timeout=30)
    assert final["state"] == "SUCCESS", json.dumps(final)[:300]
    assert _job_ids(web.url) == before
    # and the rate limit was not set: a new job still starts at once
    probe = http.post(
        f"{web.url}/api/jobs",
        json={"agent": "echo", "input": {"text": "after", "steps": 1, "delay": 0}},
    ).json()["id"]
    assert wait_until(
        lambda: http.get(f"{web.url}/api/jobs/{probe}").json()["state"] == "SUCCESS", timeout=20
    )
