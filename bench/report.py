"""The shape every benchmark reports in, and the summary `python -m bench` writes.

A benchmark module that takes part in `python -m bench` exposes

    def figures(quick: bool) -> list[Figure]

which measures the figure and its baseline *in the same run* (the baseline
is what the figure is judged against: a floor server, bare Celery, a bare
Redis round trip) and returns them. `quick` asks for a short run (fewer
clients, fewer rounds) that still exercises every path.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass
from datetime import UTC, datetime

import psutil


@dataclass(frozen=True)
class Figure:
    """One measured figure beside its baseline, and the floor it must meet."""

    name: str  # what was measured, e.g. "broadcast N=1000 @20/s: CPU per delivery"
    value: float
    unit: str  # "µs", "ms", "MB", "jobs/s", "×"
    baseline: float | None = None  # measured in the same run; None when there is none
    baseline_name: str = ""  # e.g. "floor: asyncio websockets.broadcast"
    floor: str = ""  # the bar, in words: "≤ 0.5 × baseline", "< 250 MB"
    ok: bool | None = None  # whether the floor holds (None: nothing to judge)

    @property
    def ratio(self) -> float | None:
        if self.baseline in (None, 0):
            return None
        return self.value / self.baseline


def machine() -> str:
    cpus = psutil.cpu_count(logical=True)
    ram = psutil.virtual_memory().total / 2**30
    return f"{platform.machine()}, {cpus} CPUs, {ram:.0f} GiB, Python {platform.python_version()}"


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _num(value: float | None, unit: str = "") -> str:
    if value is None:
        return "–"
    text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"
    return f"{text} {unit}".strip()


def table(figures: list[Figure]) -> str:
    """A Markdown table: each figure beside its baseline, the ratio and the floor."""
    lines = [
        "| figure | Agentdeck | baseline (same run) | ratio | floor | holds |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for f in figures:
        base = f"{_num(f.baseline, f.unit)} ({f.baseline_name})" if f.baseline_name else "–"
        ratio = f"×{f.ratio:.2f}" if f.ratio is not None else "–"
        holds = {True: "yes", False: "**no**", None: "–"}[f.ok]
        cells = [f.name, _num(f.value, f.unit), base, ratio, f.floor or "–", holds]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
