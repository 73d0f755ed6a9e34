"""The event envelope: its dataclass, its one layout, its readers, decode.

Every envelope is written here, in one fixed layout (the publish script only
splices the seq and the state into the text `write` gives it):

    {"job":<job>,"seq":<seq>,"type":<type>,"ts":<ts>,"state":"<state>","data":<data>}

The readers take a field off that layout without parsing the rest (the hub
and the replay log read each envelope this way) and fall back to a full parse
for anything they cannot read safely: a job id or type with escapes, another
writer's key order or spaces. Redis scripts get the layout's markers from
`workers.lua`. This module imports nothing else from the project.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson

# The layout's markers, in order. A JSON string escapes its quotes, so no marker
# can occur inside a string: with the data last, the first of each is the
# envelope's own (the Redis scripts find the seq and the state that way).
JOB_AT = '{"job":'
SEQ_AT = ',"seq":'
TYPE_AT = ',"type":'
TS_AT = ',"ts":'
STATE_AT = ',"state":"'  # states are plain names, written unquoted between these quotes
DATA_AT = '","data":'

_plain = re.compile(r"[A-Za-z0-9_.:@-]*").fullmatch
# The standard encoder builds its C encoder anew for every call; orjson does not.
# What orjson refuses (an int past 64 bits, a lone surrogate) goes the slow way.
_ORJSON_OPTIONS = orjson.OPT_NON_STR_KEYS
_encode_slowly = json.JSONEncoder(separators=(",", ":"), default=str).encode


class EnvelopeError(ValueError):
    """A message that is not a valid event envelope."""


def encode_data(data: dict[str, Any]) -> str:
    try:
        return orjson.dumps(data, default=str, option=_ORJSON_OPTIONS).decode()
    except orjson.JSONEncodeError:
        return _encode_slowly(data)


def json_str(value: str) -> str:
    """A JSON string; the usual job ids and event types skip the encoder."""
    if _plain(value):
        return f'"{value}"'
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError:
        return _encode_slowly(value)


def write(job: str, seq: int | str, type_: str, ts: float, state: str, data: dict[str, Any]) -> str:
    """The envelope's text. `seq` and `state` go in as given: the publisher passes
    the markers its script cuts the text at (see `publisher._pack`)."""
    return (
        f"{JOB_AT}{json_str(job)}{SEQ_AT}{seq}{TYPE_AT}{json_str(type_)}{TS_AT}{float(ts)!r}"
        f"{STATE_AT}{state}{DATA_AT}{encode_data(data)}}}"
    )


@dataclass(frozen=True, slots=True)
class Event:
    job: str
    seq: int
    type: str
    ts: float
    state: str
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def encode(self) -> str:
        # The layout quotes the state but does not escape it (it is a plain name):
        # any other text is escaped here, so the envelope stays JSON.
        state = self.state if _plain(self.state) else json_str(self.state)[1:-1]
        return write(self.job, self.seq, self.type, self.ts, state, self.data)


# -- reading ------------------------------------------------------------------
# The fast readers match the layout from its start up to the field they read,
# with strings that hold no escape (their text is their value) and a plain
# integer seq; anything else (escapes, another writer's order or spaces) takes
# the full parse. An escaped quote is never followed by a marker, so a job id
# with escapes still ends where the seq's marker starts.
_STR = r'"([^"\\]*)"'
_HEAD = re.escape(JOB_AT) + _STR + re.escape(SEQ_AT) + "([0-9]+)" + re.escape(TYPE_AT) + _STR
_READ_HEAD = re.compile(_HEAD).match
_READ_SEQ = re.compile(re.escape(JOB_AT) + '"[^"]*"' + re.escape(SEQ_AT) + "([0-9]+),").match
_TS = _HEAD + re.escape(TS_AT) + "([-+.eE0-9]+)"
_READ_TS = re.compile(_TS + ",").match
_READ_STATE = re.compile(_TS + re.escape(STATE_AT) + r'([^"\\]*)' + re.escape(DATA_AT)).match


def read_head(raw: str) -> tuple[str, int, str]:
    """(job, seq, type) of an envelope."""
    if m := _READ_HEAD(raw):
        job, seq, type_ = m.groups()
        return job, int(seq), type_
    obj = _parse(raw)
    return _field(obj, "job", str), _field(obj, "seq", int), _field(obj, "type", str)


def read_seq(raw: str) -> int:
    if m := _READ_SEQ(raw):
        return int(m[1])
    return _field(_parse(raw), "seq", int)


def read_ts(raw: str) -> float:
    if m := _READ_TS(raw):
        try:
            return float(m[4])
        except ValueError:  # not a number after all ("1e"): JSON's own parse says so
            pass
    return _field(_parse(raw), "ts", float)


def read_state(raw: str) -> str:
    if m := _READ_STATE(raw):
        return m[5]
    return _field(_parse(raw), "state", str)


def read_row(raw: str) -> tuple[Event, str] | None:
    """The event of an envelope in the layout, and its data's JSON text as written
    (for SQL, which stores that text); None for anything else, which `decode` reads."""
    m = _READ_STATE(raw)
    if m is None or raw[-1:] != "}":
        return None
    data_text = raw[m.end() : -1]
    try:
        data = orjson.loads(data_text)
        ts = float(m[4])
    except (orjson.JSONDecodeError, ValueError):  # lone surrogates, "1e": decode says
        return None
    if not isinstance(data, dict) or int(m[2]) < 1:
        return None
    return Event(job=m[1], seq=int(m[2]), type=m[3], ts=ts, state=m[5], data=data), data_text


def _parse(raw: str | bytes) -> dict[str, Any]:
    try:
        obj = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise EnvelopeError(f"not JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise EnvelopeError("envelope must be a JSON object")
    return obj


def _field(obj: dict[str, Any], name: str, kind: type[Any]) -> Any:
    try:
        return kind(obj[name])
    except (KeyError, TypeError, ValueError, OverflowError) as exc:  # a 1e999 seq
        raise EnvelopeError(f"bad envelope: {exc!r}") from exc


def decode(raw: str | bytes) -> Event:
    """Parse one envelope, raising `EnvelopeError` on anything malformed."""
    return from_dict(_parse(raw))


def from_dict(obj: Any) -> Event:
    if not isinstance(obj, dict):
        raise EnvelopeError("envelope must be a JSON object")
    try:
        event = Event(
            job=str(obj["job"]),
            seq=int(obj["seq"]),
            type=str(obj["type"]),
            ts=float(obj["ts"]),
            state=str(obj["state"]),
            data=dict(obj.get("data") or {}),
        )
    except (KeyError, TypeError, ValueError, OverflowError) as exc:  # a 1e999 seq
        raise EnvelopeError(f"bad envelope: {exc!r}") from exc
    if event.seq < 1:
        raise EnvelopeError("seq must be >= 1")
    return event
