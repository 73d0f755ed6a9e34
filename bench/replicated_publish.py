"""The cost of publishing through Redis Sentinel, where each batch waits for a replica.

    python -m bench.replicated_publish [--quick]

A Sentinel set of its own (one primary, one replica, three Sentinels; see
tests/support/sentinel.py). One publisher sends events one at a time, each
waited for (`emit(wait=True)`: one round trip each, the case where `WAIT`
weighs most), first on the primary's plain URL (the baseline: no `WAIT`),
then on the set's Sentinel URL (`WAIT 1 1000` after each batch). Both on the
same server, in the same run. Streaming agents' events are batched, so the
cost per event there is lower still.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from pathlib import Path

from bench.report import Figure, table
from tests.support.sentinel import SentinelSet
from workers.publisher import Publisher
from workers.settings import Settings


def per_event_us(url: str, events: int) -> float:
    settings = Settings(redis_url=url, key_prefix=f"bench-{uuid.uuid4().hex[:6]}:")
    publisher = Publisher(settings)
    job = uuid.uuid4().hex
    for _ in range(50):  # warm up: connection, script loaded
        publisher.emit(job, "log", {"message": "warm"}, wait=True)
    started = time.perf_counter()
    for i in range(events):
        publisher.emit(job, "output", {"text": f"chunk {i}\n"}, wait=True)
    elapsed = time.perf_counter() - started
    return elapsed / events * 1e6


def figures(quick: bool) -> list[Figure]:
    events = 500 if quick else 3000
    with tempfile.TemporaryDirectory(prefix="agentdeck-bench-") as logs:
        group = SentinelSet(Path(logs)).start()
        try:
            plain = per_event_us(f"redis://127.0.0.1:{group.ports['primary']}/0", events)
            replicated = per_event_us(group.url, events)
        finally:
            group.stop()
    return [
        Figure(
            name="publish through Sentinel (WAIT for a replica), one event per round trip",
            value=replicated,
            unit="µs",
            baseline=plain,
            baseline_name="same primary, plain URL, no WAIT",
            floor="≤ 3 × baseline",
            ok=replicated <= 3 * plain,
        )
    ]


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.replicated_publish")
    ap.add_argument("--quick", action="store_true")
    print(table(figures(ap.parse_args().quick)))


if __name__ == "__main__":
    main()
