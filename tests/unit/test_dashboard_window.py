"""The dashboard's rates and percentiles: over a sliding window, not one 2-second sample.

`webapp.monitor.dashboard.compute` is fed heartbeats as `list_workers` gives them,
sample after sample, the state it returns carried to the next, as `take_sample`
does through Redis. No services.
"""

from __future__ import annotations

from typing import Any

import pytest

from webapp.monitor import histo
from webapp.monitor.dashboard import SAMPLE_EVERY, WINDOW, compute
from workers.shared_counters import BUCKETS

HOST = "w1@test"


def beat(
    at: float, succeeded: int, failed: int = 0, *, boot: str = "1", runtime: float = 0.04
) -> dict[str, Any]:
    """One online worker whose last heartbeat (at `at`) says these totals."""
    bucket = next(i for i, b in enumerate(BUCKETS) if runtime <= b)
    runs = [0] * histo.NB
    runs[bucket] = succeeded + failed
    task = {"succeeded": succeeded, "failed": failed, "runtime": runs, "wait": runs}
    info = {"pid": boot, "started": 0, "active": 0, "tasks": {"t": task}}
    return {"hostname": HOST, "online": True, "last_heartbeat": at, "info": info}


class Dashboard:
    """Samples taken every SAMPLE_EVERY seconds, the state kept between them."""

    def __init__(self) -> None:
        self.state: dict[str, Any] = {}
        self.samples: list[dict[str, Any]] = []

    def sample(self, now: float, *workers: dict[str, Any]) -> dict[str, Any]:
        sample, self.state = compute(list(workers), self.state, [], now)
        self.samples.append(sample)
        return sample


def test_a_steady_rate_reads_steady_though_heartbeats_bring_it_in_lumps() -> None:
    # given a worker finishing 5 tasks a second, whose heartbeats reach every other sample
    dash = Dashboard()
    t0 = 1_000.0
    dash.sample(t0, beat(t0, 0))
    shown = []
    for i in range(1, 40):
        now = t0 + i * SAMPLE_EVERY
        last_beat = now - (i % 2) * SAMPLE_EVERY  # odd samples see no new heartbeat
        shown.append(dash.sample(now, beat(last_beat, int(5 * (last_beat - t0)))))

    # then each sample counts what arrived with it (a comb: 20, 0, 20, 0, ...)
    counts = [s["succeeded_count"] for s in shown]
    assert set(counts[:6]) == {0, 20}
    # and once the window is full its rate is the window's, steady within a lump
    full = [s for s in shown if s["window"] == WINDOW]
    assert len(full) >= 20
    assert all(4.6 <= s["succeeded"] <= 5.4 for s in full), [s["succeeded"] for s in full]
    # which is the window's counts over the time it covers (not the last sample's)
    last = shown[-1]
    in_window = [s for s in dash.samples if s["ts"] > last["ts"] - WINDOW]
    assert last["succeeded"] == pytest.approx(
        sum(s["succeeded_count"] for s in in_window) / last["window"], abs=1e-3
    )
    assert last["throughput"] == last["succeeded"] and last["failed"] == 0


def test_a_fresh_dashboard_averages_over_the_time_it_has() -> None:
    # given samples taken for 10 s only, 12 tasks arriving with the second heartbeat
    dash = Dashboard()
    dash.sample(0.0, beat(0.0, 100))  # what was done before is not news
    dash.sample(2.0, beat(2.0, 112))
    last = dash.sample(10.0, beat(2.0, 112))

    # then the first sample shows nothing, and the rate is over the 10 s covered
    assert dash.samples[0]["succeeded"] == 0 and dash.samples[0]["window"] == 0
    assert last["window"] == 10.0
    assert last["succeeded"] == pytest.approx(1.2)


def test_the_window_slides_and_percentiles_come_from_it() -> None:
    # given 30 tasks of about 40 ms reported once, then nothing new
    dash = Dashboard()
    for i in range(21):  # 40 s of quiet before
        dash.sample(i * SAMPLE_EVERY, beat(i * SAMPLE_EVERY, 0))
    hit = dash.sample(42.0, beat(42.0, 30, runtime=0.04))
    quiet = [dash.sample(42.0 + i * SAMPLE_EVERY, beat(42.0, 30)) for i in range(1, 16)]

    # then the percentiles hold while the tasks are in the window, the rate too
    assert hit["succeeded"] == pytest.approx(1.0)
    assert 0.025 < hit["runtime_p50"] <= 0.05
    assert quiet[13]["succeeded"] == pytest.approx(1.0) and quiet[13]["runtime_p95"] is not None
    # and both are gone once the window has slid past them
    assert quiet[14]["succeeded"] == 0 and quiet[14]["runtime_p50"] is None


def test_a_restarted_worker_counts_from_zero_and_a_long_gap_starts_again() -> None:
    dash = Dashboard()
    dash.sample(0.0, beat(0.0, 500, 5))
    # when the worker restarts and its first heartbeat says 4 tasks since its start
    restarted = dash.sample(2.0, beat(2.0, 3, 1, boot="2"))
    # then those 4 are counted, not a negative difference
    assert (restarted["succeeded_count"], restarted["failed_count"]) == (3, 1)
    # when no sample was taken for longer than the window (no web process ran)
    later = dash.sample(2.0 + WINDOW + 60, beat(2.0 + WINDOW + 60, 900, 1, boot="2"))
    # then what finished meanwhile is not counted as this sample's, and the window starts over
    assert later["succeeded_count"] == 0 and later["window"] == 0 and later["succeeded"] == 0
