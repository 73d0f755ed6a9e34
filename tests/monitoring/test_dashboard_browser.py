"""The dashboard on a fresh install, in Chromium: round ticks with units, time ticks,
series across the width, and rates averaged over the window the samples say.

A platform of its own (Redis, SQL, web, worker), so the dashboard starts with no
samples at all, as on a new machine.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page

from tests.browser.helpers import PageErrors
from tests.monitoring.helpers import eventually
from tests.support import Platform, WebService, WorkerService, http
from tests.support.jobs import state_is, submit
from tests.support.own_redis import start_own_redis_platform

RATE_WINDOW = 30.0  # webapp/monitor/dashboard.py WINDOW
CLOCK = re.compile(r"^\d\d:\d\d:\d\d$")
X_STEPS = {5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600}


@pytest.fixture(scope="module")
def fresh(platform: Platform) -> Iterator[WebService]:
    """A new platform's web server, its worker running, no sample taken before."""
    own = start_own_redis_platform(keep_latest=platform.output_dir)
    worker = WorkerService(own, name="dash-worker")
    web = WebService(own, name="dash-web")
    try:
        worker.start()
        web.start()
        yield web
    finally:
        web.stop()
        worker.stop()
        own.close()


@pytest.fixture
def dash(browser: Browser, fresh: WebService, admin_token: str) -> Iterator[Page]:
    errors = PageErrors()
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    login = context.request.get(f"{fresh.url}/login?token={admin_token}", max_redirects=0)
    assert login.status == 302
    page = context.new_page()
    page.on("pageerror", lambda exc: errors.uncaught.append(str(exc)))
    yield page
    context.close()
    errors.assert_clean()


def samples(web: WebService) -> list[dict[str, Any]]:
    r = http.get(f"{web.url}/api/monitor/dashboard", params={"window": 3600})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["rate_window"] == RATE_WINDOW
    return list(body["samples"])


def windowed(all_samples: list[dict[str, Any]], at: float, key: str) -> float:
    """The rate at sample time `at` from the samples' own counts: what finished in the
    window, over the part of the window that was sampled (all of it, or since the first)."""
    count = sum(s[key] for s in all_samples if at - RATE_WINDOW < s["ts"] <= at)
    span = min(RATE_WINDOW, at - all_samples[0]["ts"])
    return count / span if span > 0 else 0.0


def chart(page: Page, chart_id: str) -> dict[str, Any]:
    """What a chart drew: its scale, tick labels and each series' points."""
    return dict(
        page.evaluate(
            """(id) => {
              const svg = document.getElementById(id);
              const text = (sel) => [...svg.querySelectorAll(sel)].map((t) => ({
                label: t.textContent, value: Number(t.dataset.value ?? t.dataset.ts) }));
              const series = {};
              for (const p of svg.querySelectorAll(".series")) {
                const at = (a) => Number(p.getAttribute(a));
                const pts = p.tagName === "circle" ? [[at("cx"), at("cy")]]
                  : p.getAttribute("points").split(" ").map((xy) => xy.split(",").map(Number));
                (series[p.dataset.series] ||= []).push(...pts);
              }
              return { ...svg.dataset, y: text(".y-tick"), x: text(".x-tick"), series };
            }""",
            chart_id,
        )
    )


def assert_round_y_ticks(c: dict[str, Any], unit: str) -> None:
    values = [t["value"] for t in c["y"]]
    assert values[0] == 0 and len(values) >= 3, c["y"]
    step = values[1]
    mantissa = step / 10 ** math.floor(math.log10(step))
    assert round(mantissa, 6) in {1, 2, 2.5, 5}, c["y"]
    assert all(math.isclose(v, i * step, abs_tol=1e-9) for i, v in enumerate(values)), c["y"]
    suffix = f" {unit}" if unit else ""
    for t in c["y"]:
        assert t["label"] == f"{t['value']:g}{suffix}", t


def assert_time_ticks(c: dict[str, Any]) -> None:
    ticks = c["x"]
    assert len(ticks) >= 2, c["x"]
    assert all(CLOCK.match(t["label"]) for t in ticks), c["x"]
    times = [t["value"] for t in ticks]
    assert all(float(c["from"]) <= t <= float(c["to"]) for t in times)
    steps = {round(b - a) for a, b in zip(times, times[1:], strict=False)}
    assert len(steps) == 1 and steps <= X_STEPS, times


def test_the_dashboard_of_a_fresh_install_reads_well_and_averages_rates(
    dash: Page, fresh: WebService, screenshots: Path
) -> None:
    # given a fresh install's dashboard, its first samples drawn
    page = dash
    page.goto(f"{fresh.url}/monitor/")
    page.wait_for_function("() => Number(document.body.dataset.lastSample || 0) > 0")

    # then with nothing done yet the rate axis is 0..1 tasks/s in round steps, not 0..0
    idle = chart(page, "chart-rate")
    assert_round_y_ticks(idle, "tasks/s")
    assert float(idle["yTop"]) == 1.0

    # when the worker runs a burst of jobs
    jobs = [submit(fresh.url, "echo", text=f"dash {i}", steps=1, delay=0.01) for i in range(12)]
    for job_id in jobs:
        state_is(fresh.url, job_id, "SUCCESS")

    # and a sample comes that counts nothing new while the burst is still in the window
    def quiet_after_burst(got: list[dict[str, Any]]) -> bool:
        last = got[-1]
        counted = sum(s["succeeded_count"] for s in got)
        quiet = last["succeeded_count"] == 0 and last["succeeded"] > 0
        # (and sampled for longer than the charts' least span, 10 s: they span the data)
        return counted >= len(jobs) and quiet and last["ts"] - got[0]["ts"] > 12

    shown_ts = eventually(lambda: samples(fresh), quiet_after_burst, 20)[-1]["ts"]
    page.wait_for_function(
        "(ts) => Number(document.body.dataset.lastSample) >= ts", arg=shown_ts, timeout=10_000
    )
    shown = page.evaluate(
        """() => {
          const dd = (name) => document.querySelector(`[data-tile="${name}"] dd`);
          const tile = (name) => Number(dd(name).dataset.value);
          return { ts: Number(document.body.dataset.lastSample),
                   rate: tile("succeeded"), total: tile("throughput") };
        }"""
    )
    page.screenshot(path=screenshots / "dashboard-fresh-install.png", full_page=True)
    rate_chart = chart(page, "chart-rate")
    runtime_chart = chart(page, "chart-runtime")
    depth_chart = chart(page, "chart-depth")

    # then the rate shown is the window's average of the samples' counts, not the last
    # sample's (which counted nothing)
    data = samples(fresh)
    at = next(s for s in data if s["ts"] == shown["ts"])
    expected = windowed(data, shown["ts"], "succeeded_count")
    assert expected > 0 and at["succeeded_count"] == 0
    assert shown["rate"] == pytest.approx(expected, abs=2e-3)
    assert shown["total"] == pytest.approx(
        expected + windowed(data, shown["ts"], "failed_count"), abs=2e-3
    )

    # and every chart has round y ticks with its unit and hh:mm:ss time ticks
    assert_round_y_ticks(rate_chart, "tasks/s")
    assert_round_y_ticks(runtime_chart, runtime_chart["unit"])
    assert runtime_chart["unit"] in {"ms", "s"}
    assert_round_y_ticks(depth_chart, "")
    for c in (rate_chart, runtime_chart, depth_chart):
        assert_time_ticks(c)

    # and the series fills the plot: from the first sample at the left edge (the install
    # is younger than the window) to the last at the right (but for the time since it),
    # each point where its sample's time and windowed rate put it, below the axis' top
    left, right = float(rate_chart["plotLeft"]), float(rate_chart["plotRight"])
    low, high = float(rate_chart["plotBottom"]), float(rate_chart["plotTop"])
    start, end = float(rate_chart["from"]), float(rate_chart["to"])
    top = float(rate_chart["yTop"])
    points = rate_chart["series"]["succeeded"]
    drawn = data[: len(points)]
    assert start == pytest.approx(data[0]["ts"], abs=1e-3)
    assert end - drawn[-1]["ts"] <= 5.0 and drawn[-1]["ts"] >= shown["ts"]
    for (px, py), s in zip(points, drawn, strict=True):
        assert px == pytest.approx(left + (s["ts"] - start) / (end - start) * (right - left), abs=1)
        assert py == pytest.approx(low - s["succeeded"] / top * (low - high), abs=1)
    assert points[0][0] == pytest.approx(left, abs=1)
    highest = max(s["succeeded"] for s in drawn)
    assert top >= highest * 1.05
    assert highest >= top / 10  # not squeezed against the bottom


def test_every_axis_top_gets_round_steps_whole_ones_for_counts(
    dash: Page, fresh: WebService
) -> None:
    # given the charts' axis rule, as the dashboard loads it
    page = dash
    page.goto(f"{fresh.url}/monitor/")
    maxima = [0, 0.3, 0.9, 1, 1.7, 2.3, 3, 7, 8, 9.5, 11, 23, 37, 99, 250, 4_321, 77_777]
    # when it draws an axis for each maximum, counts (whole numbers) and rates
    axes = page.evaluate(
        """async (maxima) => {
          const { yTicks } = await import("/static/monitor/chart.js");
          return maxima.flatMap((max) => [true, false].map((integer) => (
            { max, integer, ticks: yTicks(max, { integer }) })));
        }""",
        maxima,
    )
    # then each axis reaches past its maximum in round steps, whole ones for counts
    assert len(axes) == 2 * len(maxima)
    for axis in axes:
        ticks = axis["ticks"]
        assert ticks[0] == 0 and len(ticks) >= 2 and ticks[-1] >= axis["max"], axis
        step = ticks[1]
        assert round(step / 10 ** math.floor(math.log10(step)), 6) in {1, 2, 2.5, 5}, axis
        assert all(math.isclose(v, i * step) for i, v in enumerate(ticks)), axis
        if axis["integer"]:
            assert all(float(v).is_integer() for v in ticks), axis
