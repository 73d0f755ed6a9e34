"""Envelope micro-benchmark: ns per encode and per read, the code before
`workers.envelope` (kept here, verbatim, as the baseline) against it, in one run.

    python -m bench.envelope            # best of 7 repeats
    python -m bench.envelope --quick    # best of 3, fewer calls

The publisher thread packs every event (`publisher._pack`, then one line of
the batch's argument); the hub reads every envelope's job, seq and type, and
its ts for the latency metric; the replay log reads seqs, and heads' states.
"""

from __future__ import annotations

import argparse
import json
import re
import timeit
import uuid
from collections.abc import Callable
from dataclasses import asdict
from functools import partial
from typing import Any

import orjson

from workers.envelope import Event, read_head, read_seq, read_state, read_ts
from workers.lua import RS, SEP
from workers.publisher import _pack

# -- the reference: a straightforward writer and readers of each place, to compare with --
_PLAIN = re.compile(r"[A-Za-z0-9_.:@-]*")
_encode_slowly = json.JSONEncoder(separators=(",", ":"), default=str).encode


def _old_encode_data(data: dict[str, Any]) -> str:
    try:
        return orjson.dumps(data, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
    except orjson.JSONEncodeError:
        return _encode_slowly(data)


def _old_json_str(value: str) -> str:
    return f'"{value}"' if _PLAIN.fullmatch(value) else orjson.dumps(value).decode()


def old_pack(job: str, type_: str, ts: float, state: str, data: dict[str, Any]) -> str:
    return (
        f'{job}{SEP}{{"job":{_old_json_str(job)},"seq":{SEP},"type":{_old_json_str(type_)},'
        f'"ts":{float(ts)!r},"state":"{SEP}{state}{SEP}","data":{_old_encode_data(data)}}}'
    )


def old_event_encode(event: Event) -> str:
    return json.dumps(asdict(event), separators=(",", ":"), default=str)


def old_envelope_head(raw: str) -> tuple[str, int, str]:
    if raw.startswith('{"job":"'):
        end = raw.find('","seq":', 8)
        if end > 0 and "\\" not in raw[8:end]:
            comma = raw.index(",", end + 8)
            type_start = comma + 9
            if raw.startswith(',"type":"', comma):
                return (
                    raw[8:end],
                    int(raw[end + 8 : comma]),
                    raw[type_start : raw.index('"', type_start)],
                )
    ev = json.loads(raw)
    return str(ev["job"]), int(ev["seq"]), str(ev["type"])


def old_seq_of(envelope: str) -> int:
    start = envelope.index('"seq":') + 6
    return int(envelope[start : envelope.index(",", start)])


def old_state_of(envelope: str) -> str:
    start = envelope.index(',"state":"') + 10
    return envelope[start : envelope.index('"', start)]


def old_event_ts(raw: str) -> float | None:
    i = raw.find('"ts":')
    if i < 0:
        return None
    start = i + 5
    end = raw.find(",", start)
    try:
        return float(raw[start:end])
    except ValueError:
        return None


# -- the events -----------------------------------------------------------------
JOB = str(uuid.uuid4())
TS = 1764100000.123456
SAMPLES: dict[str, tuple[str, str, dict[str, Any]]] = {
    "output": ("output", "STARTED", {"text": "a chunk of streamed model output " * 6}),
    "step": ("step.finished", "STARTED", {"name": "search", "duration_ms": 41.2}),
    "succeeded": ("job.succeeded", "SUCCESS", {"result": {"answer": 42, "items": [1, 2, 3]}}),
}


def _splice(packed: str, seq: int, state: str) -> str:
    """What the publish script makes of a packed event: head seq mid state tail."""
    head, mid, _, tail = packed.split(SEP)
    return f"{head}{seq}{mid}{state}{tail}"


def _best_ns(
    old: Callable[[], object], new: Callable[[], object], number: int, repeat: int
) -> tuple[float, float]:
    """The best ns per call of each, their repeats interleaved so load shifts hit both."""
    olds, news = [], []
    for _ in range(repeat):
        olds.append(timeit.timeit(old, number=number))
        news.append(timeit.timeit(new, number=number))
    return min(olds) / number * 1e9, min(news) / number * 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    opts = parser.parse_args()
    number, repeat = (5_000, 3) if opts.quick else (50_000, 7)

    rows: list[tuple[str, str, float, float]] = []
    for name, (type_, state, data) in SAMPLES.items():
        raw = _splice(_pack(JOB, type_, TS, state, data), 7, state)
        event = Event(JOB, 7, type_, TS, state, data)

        def old_publish(t: str = type_, s: str = state, d: dict[str, Any] = data) -> str:
            return f"{old_pack(JOB, t, TS, s, d)}{SEP}0{SEP}{RS}"

        def new_publish(t: str = type_, s: str = state, d: dict[str, Any] = data) -> str:
            return f"{JOB}{SEP}{_pack(JOB, t, TS, s, d)}{SEP}0{SEP}{RS}"

        # the same text, old and new, by every writer
        assert old_publish() == new_publish()
        assert old_event_encode(event) == event.encode() == raw
        cases: list[tuple[str, Callable[[], object], Callable[[], object]]] = [
            ("publisher: pack + line", old_publish, new_publish),
            ("Event.encode", partial(old_event_encode, event), event.encode),
            ("hub: head", partial(old_envelope_head, raw), partial(read_head, raw)),
            ("hub: ts", partial(old_event_ts, raw), partial(read_ts, raw)),
            (
                "hub: head + ts",
                lambda r=raw: (old_envelope_head(r), old_event_ts(r)),
                lambda r=raw: (read_head(r), read_ts(r)),
            ),
            ("replay log: seq", partial(old_seq_of, raw), partial(read_seq, raw)),
            ("replay log: state", partial(old_state_of, raw), partial(read_state, raw)),
        ]
        for label, old, new in cases:
            rows.append((name, label, *_best_ns(old, new, number, repeat)))

    print(f"{'event':<10} {'what':<22} {'old ns':>8} {'new ns':>8} {'new/old':>8}")
    for name, label, old_ns, new_ns in rows:
        print(f"{name:<10} {label:<22} {old_ns:8.0f} {new_ns:8.0f} {new_ns / old_ns:8.2f}")


if __name__ == "__main__":
    main()
