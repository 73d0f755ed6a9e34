"""JSON from outside, parsed strictly, and text that UTF-8 cannot hold.

`loads` refuses what Python's `json` accepts but nothing downstream can use:
NaN and Infinity literals, numbers that overflow to infinity (`1e999`), and
nesting deeper than `MAX_DEPTH` (the C parser recurses per level, so 100,000
`[` would end in a RecursionError). A JSON string may also hold a lone
surrogate (`"\\ud800"`): valid JSON, but no UTF-8 encoder (SQL, Redis) takes
it. `unencodable_path` finds one. PostgreSQL's text also refuses NUL
(`"\u0000"`), valid in JSON and Python. `scrub` replaces both with U+FFFD.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

MAX_DEPTH = 64

# A JSON string, escapes included (unrolled: linear on long strings).
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")
# Text from valid UTF-8 holds a surrogate only through a \uD800-\uDFFF escape.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89abcdefABCDEF]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_SQL_UNSAFE = re.compile("[\ud800-\udfff\x00]")


class JsonRefused(ValueError):
    """Text that is not JSON this API takes; the message says why."""


def _too_deep(text: str, max_depth: int) -> bool:
    """Whether brackets outside strings nest deeper than `max_depth` (a scan, no parse)."""
    depth = 0
    for bracket in _BRACKET.findall(_STRING.sub("", text)):
        if bracket in "[{":
            depth += 1
            if depth > max_depth:
                return True
        else:
            depth -= 1
    return False


def _no_constant(name: str) -> Any:
    raise JsonRefused(f"{name} is not a JSON number")


def _finite_float(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):
        raise JsonRefused(f"the number {literal[:40]} is too large")
    return value


def loads(data: str | bytes, max_depth: int = MAX_DEPTH) -> Any:
    """Parse UTF-8 JSON text; raises `JsonRefused` for anything malformed or refused."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            raise JsonRefused("the text is not UTF-8") from None
    if _too_deep(data, max_depth):
        raise JsonRefused(f"the JSON is too deeply nested (more than {max_depth} levels)")
    try:
        return json.loads(data, parse_constant=_no_constant, parse_float=_finite_float)
    except JsonRefused:
        raise
    except (ValueError, RecursionError) as exc:  # RecursionError: belt and braces
        raise JsonRefused(f"not valid JSON: {exc}") from None


def may_hold_surrogates(text: str) -> bool:
    """False when JSON text certainly decodes without lone surrogates (the usual case)."""
    return _SURROGATE_ESCAPE.search(text) is not None


def may_need_scrub(text: str) -> bool:
    """False when JSON text certainly decodes to strings SQL can store (the usual case)."""
    return "\\u0000" in text or may_hold_surrogates(text)


def _has_surrogate(text: str) -> bool:
    return not text.isascii() and _SURROGATE.search(text) is not None


def unencodable_path(value: Any) -> str | None:
    """Where in a parsed JSON value the first string (or key) holding a lone surrogate
    is, as `input.text` or `args[0]` ("" for the value itself); None if there is none."""
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            if _has_surrogate(item):
                return path
        elif isinstance(item, dict):
            for key, child in reversed(item.items()):
                here = f"{path}.{scrub(key)}" if path else scrub(key)
                if _has_surrogate(key):
                    return here
                stack.append((here, child))
        elif isinstance(item, list):
            stack.extend((f"{path}[{i}]", child) for i, child in reversed(list(enumerate(item))))
    return None


def scrub(value: Any) -> Any:
    """`value` with every lone surrogate and NUL in its strings and keys replaced by U+FFFD."""
    if isinstance(value, str):
        return _SQL_UNSAFE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {scrub(k): scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v) for v in value]
    return value
