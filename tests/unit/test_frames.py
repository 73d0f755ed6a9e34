"""Parsing WebSocket frames: what a client may send, and the error each mistake gets."""

from __future__ import annotations

import json

import pytest

from webapp.ws import MAX_FRAME_CHARS, FrameError, parse_frame


def test_a_good_frame_is_its_object() -> None:
    frame = parse_frame('{"op": "subscribe", "topic": "job:a", "since": 3}')
    assert frame == {"op": "subscribe", "topic": "job:a", "since": 3}


@pytest.mark.parametrize(
    ("text", "code"),
    [
        (b"\x00binary", "bad_frame"),
        ("{oops", "bad_json"),
        ("[1, 2]", "bad_frame"),
        ('{"no": "op"}', "bad_frame"),
        ('{"op": 7}', "bad_frame"),
        ('{"op": "ping", "n": NaN}', "bad_json"),
        ('{"op": "ping", "n": 1e999}', "bad_json"),
        ("[" * 100 + "]" * 100, "bad_json"),
        ('{"op": "ping", "text": "a\\ud800b"}', "bad_frame"),
        (json.dumps({"op": "ping", "pad": "x" * MAX_FRAME_CHARS}), "frame_too_large"),
    ],
)
def test_each_bad_frame_gets_its_code(text: object, code: str) -> None:
    with pytest.raises(FrameError) as refused:
        parse_frame(text)
    assert refused.value.code == code and refused.value.message
