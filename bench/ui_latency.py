"""Event created in the worker -> its row drawn in the browser: p50/p99.

    python -m bench.ui_latency             # starts its own platform (launcher)
    python -m bench.ui_latency --url http://127.0.0.1:8000 --events 200 --runs 3 --mode burst

burst: an `echo` job streams EVENTS words (one `output` event each, no delay
between them) after a first step that gives the run view time to open and
subscribe. paced: an `echo` job whose steps take 20 ms each; the latency of
EVENTS `step.*` events made after the page subscribed.
The run view records, for every event it draws from the WebSocket, the time
from the envelope's `ts` (set in the worker, `time.time()`) to the animation
frame that draws it (`performance.timeOrigin + performance.now()`), in
`window.__agentdeckLatency`. Same machine, same clock.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import requests
from playwright.sync_api import Page, expect, sync_playwright

from tests.support import http
from tests.support.chromium import CHROMIUM_ARGS

LEAD_SECONDS = 3.0  # the first step: the page opens and subscribes meanwhile


@dataclass(frozen=True)
class Result:
    samples: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    ws_p50_ms: float  # of which: created -> handed to the page by the WebSocket
    ws_p99_ms: float


@dataclass(frozen=True)
class Sample:
    ms: float  # created in the worker -> drawn in the page
    ws_ms: float  # created in the worker -> received from the WebSocket


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]


def summarize(samples: list[Sample]) -> Result:
    drawn = [s.ms for s in samples]
    ws = [s.ws_ms for s in samples]
    return Result(
        samples=len(samples),
        p50_ms=round(percentile(drawn, 50), 2),
        p99_ms=round(percentile(drawn, 99), 2),
        max_ms=round(max(drawn), 2),
        mean_ms=round(statistics.fmean(drawn), 2),
        ws_p50_ms=round(percentile(ws, 50), 2),
        ws_p99_ms=round(percentile(ws, 99), 2),
    )


def _submit(base_url: str, input: dict[str, Any]) -> str:
    res = http.post(f"{base_url}/api/jobs", json={"agent": "echo", "input": input}, timeout=10)
    res.raise_for_status()
    job_id: str = res.json()["id"]
    return job_id


def _entries(page: Page) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = page.evaluate("window.__agentdeckLatency")
    return entries


def _wait_done(page: Page, timeout_ms: float) -> None:
    state = page.locator("#run-state")
    expect(state).to_have_attribute("data-state", "SUCCESS", timeout=timeout_ms)


def measure(
    page: Page, base_url: str, events: int = 200, timeout_ms: float = 60_000
) -> list[Sample]:
    """Burst: one echo job streams `events` words at once; each output event's latency."""
    text = " ".join(f"w{i}" for i in range(events))
    job_id = _submit(base_url, {"text": text, "steps": 1, "delay": LEAD_SECONDS})
    page.goto(f"{base_url}/jobs/{job_id}")
    expect(page.locator("#conn")).to_have_attribute("data-status", "live", timeout=timeout_ms)
    _wait_done(page, timeout_ms)
    expect(page.locator("#output")).to_have_text(text, timeout=timeout_ms)
    samples = [Sample(e["ms"], e["wsMs"]) for e in _entries(page) if e["type"] == "output"]
    if len(samples) != events:
        raise RuntimeError(
            f"expected {events} output events drawn live, got {len(samples)}: "
            "the page opened too late (raise LEAD_SECONDS)"
        )
    return samples


def measure_paced(
    page: Page, base_url: str, events: int = 200, timeout_ms: float = 60_000
) -> list[Sample]:
    """Paced: step events 20 ms apart, as an agent at work makes them; the last `events`."""
    steps = events // 2 + 100  # the first 100 steps (2 s) cover opening the page
    job_id = _submit(base_url, {"text": "done", "steps": steps, "delay": 0.02})
    page.goto(f"{base_url}/jobs/{job_id}")
    expect(page.locator("#conn")).to_have_attribute("data-status", "live", timeout=timeout_ms)
    expect(page.locator("#timeline li").first).to_be_visible(timeout=timeout_ms)
    subscribed_at = time.time() + 0.2  # events made from here on arrive live, not replayed
    _wait_done(page, timeout_ms)
    live = [
        Sample(e["ms"], e["wsMs"])
        for e in _entries(page)
        if e["type"].startswith("step.") and e["ts"] > subscribed_at
    ]
    if len(live) < events:
        raise RuntimeError(f"expected {events} step events drawn live, got {len(live)}")
    return live[-events:]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the launcher exited with {proc.returncode}")
        try:
            if http.get(f"{url}/readyz", timeout=1).status_code == 200:
                agents = http.get(f"{url}/api/agents", timeout=2).json()["agents"]
                if any(a["name"] == "echo" for a in agents):
                    return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} was not ready within {timeout}s")


@contextmanager
def own_platform(concurrency: int = 2) -> Any:
    """`python -m launcher` on a free port with a throwaway data dir."""
    port = _free_port()
    data = Path(tempfile.mkdtemp(prefix="agentdeck-bench-"))
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    # The bench's own requests and its browser log in with this admin token.
    os.environ.setdefault("AGENTDECK_ADMIN_TOKEN", "bench-" + secrets.token_hex(12))
    env["AGENTDECK_ADMIN_TOKEN"] = os.environ["AGENTDECK_ADMIN_TOKEN"]
    repo = Path(__file__).resolve().parent.parent
    cmd = [
        sys.executable,
        "-m",
        "launcher",
        "--port",
        str(port),
        "--data-dir",
        str(data),
        "--workers",
        str(concurrency),
        "-q",
    ]
    log = open(data / "launcher.out", "wb")  # noqa: SIM115  (closed below)
    proc = subprocess.Popen(cmd, cwd=repo, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, proc)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        shutil.rmtree(data, ignore_errors=True)


def run(url: str, events: int, runs: int, mode: str = "burst") -> Result:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("no chromium on PATH")
    samples: list[Sample] = []
    how = measure_paced if mode == "paced" else measure
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            for _ in range(runs):
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                login = f"{url}/login?token={os.environ['AGENTDECK_ADMIN_TOKEN']}"
                page.context.request.get(login, max_redirects=0)
                samples += how(page, url, events)
                page.close()
        finally:
            browser.close()
    return summarize(samples)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--url", help="a running Agentdeck (default: start one with the launcher)")
    ap.add_argument("--events", type=int, default=200, help="output events per job (default 200)")
    ap.add_argument("--runs", type=int, default=1, help="jobs to measure (default 1)")
    ap.add_argument(
        "--mode",
        choices=("burst", "paced", "both"),
        default="both",
        help="burst: EVENTS words streamed at once; paced: step events 20 ms apart (default both)",
    )
    ap.add_argument("--json", action="store_true", help="print the result as JSON")
    args = ap.parse_args(argv)
    modes = ("burst", "paced") if args.mode == "both" else (args.mode,)
    if args.url:
        results = {m: run(args.url.rstrip("/"), args.events, args.runs, m) for m in modes}
    else:
        with own_platform() as url:
            results = {m: run(url, args.events, args.runs, m) for m in modes}
    if args.json:
        print(json.dumps({m: asdict(r) for m, r in results.items()}))
        return 0
    for mode, r in results.items():
        print(
            f"{mode}: event created in the worker -> row drawn in the browser, {r.samples} events: "
            f"p50 {r.p50_ms:.1f} ms, p99 {r.p99_ms:.1f} ms (max {r.max_ms:.1f}, "
            f"mean {r.mean_ms:.1f}); of which to the page's WebSocket: "
            f"p50 {r.ws_p50_ms:.1f} ms, p99 {r.ws_p99_ms:.1f} ms"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
