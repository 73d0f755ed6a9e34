"""Numeric request parameters: finite, in range, or a 400 that names the parameter.

Every number a client sends (query string, form field, JSON body option) goes
through here, so `nan`, `inf`, `1e999`, `2**63` or text never reach `min()`,
a wait, SQL or JSON output. Ranges are what the parameter can mean; a view
may still cap a valid value lower (a page size, a wait), as the API says.
"""

from __future__ import annotations

import math
import re
from typing import Any, overload

from webapp.errors import ApiError

# The widest whole number any parameter takes: a seq, an offset, a count. SQL's
# INTEGER is 32 bits on PostgreSQL (events.seq, jobs.last_seq), so a larger one
# would fail in the database instead of here.
MAX_INT = 2**31 - 1
# Timestamps (seconds since the epoch): up to the year 9999.
MAX_TIMESTAMP = 253_402_300_799.0
# Durations a client may ask for (countdowns, expiries, time limits): a year.
MAX_DURATION = 366 * 86_400.0

_WHOLE = re.compile(r"[+-]?[0-9]{1,19}")  # ASCII digits; longer text is no 64-bit number


def _bad(name: str, what: str) -> ApiError:
    return ApiError(400, "bad_request", f'"{name}" must be {what}', field=name)


def _int_text(name: str, raw: str, lo: int, hi: int) -> int:
    text = raw.strip()
    if not _WHOLE.fullmatch(text) or not lo <= int(text) <= hi:
        raise _bad(name, f"a whole number from {lo} to {hi}")
    return int(text)


@overload
def int_arg(name: str, raw: str | None, default: int, lo: int, hi: int) -> int: ...
@overload
def int_arg(name: str, raw: str | None, default: None, lo: int, hi: int) -> int | None: ...
def int_arg(name: str, raw: str | None, default: int | None, lo: int, hi: int) -> int | None:
    """A whole-number query or form value in [lo, hi]; `default` when absent or empty."""
    if raw is None or raw == "":
        return default
    return _int_text(name, raw, lo, hi)


def _show(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _bad_number(name: str, lo: float, hi: float) -> ApiError:
    return _bad(name, f"a number from {_show(lo)} to {_show(hi)}")


def _as_float(value: Any) -> float | None:
    """`value` as a float, or None if it is not a number (or a number's text)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        return float(value)
    except (ValueError, OverflowError):  # text; an int past a float's range
        return None


def _in_range(name: str, value: float | None, lo: float, hi: float) -> float:
    if value is None or not math.isfinite(value) or not lo <= value <= hi:
        raise _bad_number(name, lo, hi)
    return value


@overload
def float_arg(name: str, raw: str | None, default: float, lo: float, hi: float) -> float: ...
@overload
def float_arg(name: str, raw: str | None, default: None, lo: float, hi: float) -> float | None: ...
def float_arg(
    name: str, raw: str | None, default: float | None, lo: float, hi: float
) -> float | None:
    """A finite decimal query or form value in [lo, hi]; `default` when absent or empty."""
    if raw is None or raw == "":
        return default
    return _in_range(name, _as_float(raw), lo, hi)


def json_int(name: str, value: Any, lo: int, hi: int) -> int:
    """A JSON body's whole number (not a bool, not a float) in [lo, hi]."""
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise _bad(name, f"a whole number from {lo} to {hi}")
    return value


def json_float(name: str, value: Any, lo: float, hi: float) -> float:
    """A JSON body's number, or a number's text (Flower's clients send both), in [lo, hi]."""
    return _in_range(name, _as_float(value), lo, hi)
