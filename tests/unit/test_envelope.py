"""The envelope's fast readers agree with a full JSON parse on every envelope.

Generated envelopes, written three ways: by `Event.encode`, by the publisher
(its packed text spliced as the publish script does) and by another writer
(`json.dumps` with any key order, spaces, ASCII escapes). Ids, types and data
hold quotes, backslashes, control characters, non-ASCII and emoji, and data
holds the layout's own markers. No services.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workers import envelope
from workers.envelope import (
    EnvelopeError,
    Event,
    decode,
    read_head,
    read_row,
    read_seq,
    read_state,
    read_ts,
)
from workers.events import JobState
from workers.lua import RS, SEP
from workers.publisher import _pack

FAST = settings(max_examples=100, deadline=None, database=None)

# Pieces that make trouble in JSON or in the layout, mixed with any characters.
TRICKY = [*'"\\/\x00\x08\x1f\x7f,:{}[] \n\t\u2028\ud800é中😀', envelope.JOB_AT, envelope.SEQ_AT]
TRICKY += [envelope.TYPE_AT, envelope.TS_AT, envelope.STATE_AT, envelope.DATA_AT, "}"]
texts = st.lists(st.one_of(st.sampled_from(TRICKY), st.characters()), max_size=6).map("".join)
plain = st.from_regex(r"[A-Za-z0-9_.:@-]{1,40}", fullmatch=True)
keys = st.one_of(st.sampled_from(["job", "seq", "type", "ts", "state", "data"]), texts)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    texts,
)
data = st.dictionaries(
    keys,
    st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
        max_leaves=4,
    ),
    max_size=3,
)
states = st.one_of(st.sampled_from(list(JobState)).map(str), texts)
events = st.builds(
    Event,
    job=st.one_of(plain, texts),
    seq=st.integers(1, 2**70),
    type=st.one_of(plain, texts),
    ts=st.floats(allow_nan=False, allow_infinity=False),
    state=states,
    data=data,
)


@contextmanager
def fast_only() -> Iterator[None]:
    """Fail if a reader falls back to the full parse."""
    with mock.patch.object(envelope, "_parse", side_effect=AssertionError("full parse")):
        yield


def needs_escape(text: str) -> bool:
    """Whether JSON text of `text` holds an escape (a surrogate sends it all to ASCII)."""
    return any(c in '"\\' or c < " " or "\ud800" <= c <= "\udfff" for c in text)


def check_readers(raw: str) -> None:
    obj = json.loads(raw)
    assert read_head(raw) == (str(obj["job"]), int(obj["seq"]), str(obj["type"]))
    assert read_seq(raw) == int(obj["seq"])
    assert read_state(raw) == str(obj["state"])
    assert read_ts(raw) == float(obj["ts"])
    assert decode(raw) == Event(
        str(obj["job"]), int(obj["seq"]), str(obj["type"]), float(obj["ts"]), str(obj["state"]),
        obj["data"],
    )  # fmt: skip


@FAST
@given(events)
def test_readers_agree_with_json_on_encoded_envelopes(event: Event) -> None:
    raw = event.encode()
    check_readers(raw)
    assert decode(raw) == event
    if not needs_escape(event.job + event.type + event.state):
        with fast_only():
            assert read_head(raw) == (event.job, event.seq, event.type)
            assert (read_seq(raw), read_state(raw), read_ts(raw)) == (
                event.seq,
                event.state,
                event.ts,
            )


@FAST
@given(events.filter(lambda e: not any(c in e.job for c in SEP + RS)), st.sampled_from(JobState))
def test_readers_agree_with_json_on_what_the_publish_script_writes(
    event: Event, state: JobState
) -> None:
    # the publisher's packed text, spliced as the script does: head seq mid state tail
    head, mid, _, tail = _pack(event.job, event.type, event.ts, "", event.data).split(SEP)
    raw = f"{head}{event.seq}{mid}{state}{tail}"
    check_readers(raw)
    assert raw == Event(event.job, event.seq, event.type, event.ts, state, event.data).encode()


def _other_writer(obj: dict[str, Any], order: list[str], style: int) -> str:
    ordered = {k: obj[k] for k in order}
    if style == 0:
        return json.dumps(ordered, separators=(",", ":"), ensure_ascii=False)
    if style == 1:
        return json.dumps(ordered)  # ", " and ": ", non-ASCII escaped
    return json.dumps(ordered, indent=1, ensure_ascii=False)


@FAST
@given(events, st.permutations(["job", "seq", "type", "ts", "state", "data"]), st.integers(0, 2))
def test_readers_agree_with_json_on_another_writers_envelopes(
    event: Event, order: list[str], style: int
) -> None:
    check_readers(_other_writer(event.to_dict(), order, style))


def _decoy(value: Any) -> Any:
    return value + 1 if isinstance(value, (int, float)) else f"{value}!"


@FAST
@given(events, st.sampled_from(["job", "seq", "type", "ts", "state"]), st.integers(0, 2))
def test_a_field_copied_into_data_ahead_of_it_does_not_fool_the_readers(
    event: Event, field: str, style: int
) -> None:
    # given an envelope whose data comes before the field and holds a false copy of it
    obj = event.to_dict()
    obj["data"] = {field: _decoy(obj[field]), **obj["data"]}
    rest = [k for k in ["job", "seq", "type", "ts", "state"] if k != field]
    check_readers(_other_writer(obj, [*rest[:2], "data", *rest[2:], field], style))


@FAST
@given(events)
def test_a_row_read_off_the_layout_is_the_decoded_event_and_its_data_as_written(
    event: Event,
) -> None:
    # given an envelope in the layout
    raw = event.encode()
    # when the recorder reads it as a row
    row = read_row(raw)
    # then it is what decode gives, with the data's text as the envelope holds it, or
    # (an escaped field, a lone surrogate, an integer past 64 bits) None: decode reads it
    if row is None:
        assert needs_escape(event.job + event.type + event.state) or not _orjson_reads(raw)
        return
    got, data_text = row
    assert got == decode(raw) == event
    assert json.loads(data_text) == event.data
    assert raw.endswith(f"{envelope.DATA_AT}{data_text}}}")


def _orjson_reads(raw: str) -> bool:
    try:
        orjson.loads(raw)
    except orjson.JSONDecodeError:
        return False
    return True


@FAST
@given(events, st.permutations(["job", "seq", "type", "ts", "state", "data"]), st.integers(0, 2))
def test_another_writers_envelope_is_no_row_unless_it_is_in_the_layout(
    event: Event, order: list[str], style: int
) -> None:
    raw = _other_writer(event.to_dict(), order, style)
    row = read_row(raw)
    assert row is None or (row[0] == decode(raw) and json.loads(row[1]) == event.data)


@pytest.mark.parametrize(
    "raw",
    [
        '{"job":"a","seq":0,"type":"t","ts":1.0,"state":"PENDING","data":{}}',
        '{"job":"a","seq":1,"type":"t","ts":1e,"state":"PENDING","data":{}}',
        '{"job":"a","seq":1,"type":"t","ts":1.0,"state":"PENDING","data":[1]}',
        '{"job":"a","seq":1,"type":"t","ts":1.0,"state":"PENDING","data":{"x":NaN}}',
        '{"job":"a","seq":1,"type":"t","ts":1.0,"state":"PENDING","data":{"x":"\\ud800"}}',
        '{"job":"a","seq":1,"type":"t","ts":1.0,"state":"PENDING","data":{"x":1}',
        '{"job":"a","seq":1,"type":"t","ts":1.0,"state":"PENDING","data":{"x":1}} ',
    ],
)
def test_what_the_row_reader_cannot_vouch_for_is_left_to_decode(raw: str) -> None:
    assert read_row(raw) is None


NOT_ENVELOPES = [
    "",
    "not json",
    "[]",
    '{"job":"a"}',
    '{"job":"a","seq":"x","type":"t","ts":"soon","state":{},"data":{}}',
    '{"job":"a","seq":1e999,"type":"t","ts":"soon","state":"PENDING","data":{}}',
]


@pytest.mark.parametrize("raw", NOT_ENVELOPES)
def test_what_is_not_an_envelope_raises_envelope_error(raw: str) -> None:
    for read in (read_seq, read_ts, decode):
        with pytest.raises(EnvelopeError):
            read(raw)
    with pytest.raises(EnvelopeError):
        read_head(raw)


def test_the_fixed_layout_is_what_the_docs_show() -> None:
    event = Event("j-1", 7, "step.finished", 1764100000.123456, "STARTED", {"name": "search"})
    assert event.encode() == (
        '{"job":"j-1","seq":7,"type":"step.finished","ts":1764100000.123456,'
        '"state":"STARTED","data":{"name":"search"}}'
    )
