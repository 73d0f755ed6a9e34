"""Histogram arithmetic over the workers' bucket counts (see workers/shared_counters.py)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from workers.shared_counters import BUCKETS, NB


def add(into: list[int], counts: Sequence[int] | None) -> list[int]:
    if counts:
        for i, c in enumerate(counts[:NB]):
            into[i] += int(c)
    return into


def total(histograms: Iterable[Sequence[int] | None]) -> list[int]:
    out = [0] * NB
    for h in histograms:
        add(out, h)
    return out


def delta(now: Sequence[int] | None, before: Sequence[int] | None) -> list[int]:
    """Counts observed between two snapshots (a restart resets: take `now` whole)."""
    cur = list(now or [0] * NB)
    prev = list(before or [0] * NB)
    if any(c < p for c, p in zip(cur, prev, strict=False)):
        return cur
    return [c - p for c, p in zip(cur, prev, strict=False)]


def quantile(q: float, counts: Sequence[int]) -> float | None:
    """The q-quantile, interpolated linearly inside its bucket (as Prometheus does)."""
    n = sum(counts)
    if n == 0:
        return None
    rank = q * n
    seen = 0
    for i, c in enumerate(counts):
        if c and seen + c >= rank:
            lo = BUCKETS[i - 1] if i > 0 else 0.0
            if i >= len(BUCKETS):  # the +Inf bucket: the best we can say is its floor
                return BUCKETS[-1]
            hi = BUCKETS[i]
            return lo + (hi - lo) * ((rank - seen) / c)
        seen += c
    return BUCKETS[-1]


def cumulative(counts: Sequence[int]) -> list[tuple[str, int]]:
    """Prometheus `le` buckets: [("0.005", n), ..., ("+Inf", total)]."""
    out = []
    running = 0
    for i, c in enumerate(counts[:NB]):
        running += int(c)
        le = repr(BUCKETS[i]) if i < len(BUCKETS) else "+Inf"
        out.append((le, running))
    return out
