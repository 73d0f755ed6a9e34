"""Flower's task search syntax, run in SQL.

    name:tasks.add state:FAILURE worker:w1 args:42 kwargs:user=7 result:ok free text

Terms are split on spaces (and commas) outside double quotes; a value may
be quoted: `args:"hello world"`. `state:` may repeat (any of them); every
other term must hold, so `name:add state:FAILURE` is the failed adds (Flower
ORs its terms; ANDing them is what a search box is expected to do). Text
matches are substrings; `state:` is exact. Free text looks in the id, name,
worker, args, kwargs, result and error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import String, cast, or_
from sqlalchemy.sql.elements import ColumnElement

from workers.models import Job

TERM = re.compile(r'(?:[^\s,"]|"(?:\\.|[^"])*")+')
PREFIXES = ("name", "state", "worker", "args", "kwargs", "result")


@dataclass
class Search:
    names: list[str] = field(default_factory=list)
    states: list[str] = field(default_factory=list)
    workers: list[str] = field(default_factory=list)
    args: list[str] = field(default_factory=list)
    kwargs: dict[str, str] = field(default_factory=dict)
    results: list[str] = field(default_factory=list)
    free: list[str] = field(default_factory=list)


def _value(raw: str) -> str:
    """A term's value: one pair of surrounding quotes off, `\\"` and `\\\\` unescaped."""
    value = raw.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    return re.sub(r'\\(["\\])', r"\1", value)


def parse(text: str | None) -> Search:
    s = Search()
    for term in TERM.findall(text or ""):
        prefix, sep, rest = term.partition(":")
        key = prefix.lower()
        if not sep or key not in PREFIXES:
            s.free.append(_value(term))
            continue
        value = _value(rest)
        if not value:
            continue
        if key == "name":
            s.names.append(value)
        elif key == "state":
            s.states.append(value.upper())
        elif key == "worker":
            s.workers.append(value)
        elif key == "args":
            s.args.append(value)
        elif key == "kwargs":
            k, eq, v = value.partition("=")
            if eq:
                s.kwargs[k.strip()] = v.strip().strip("'\"")
            else:
                s.free.append(value)
        else:
            s.results.append(value)
    return s


def _like(column: Any, value: str) -> ColumnElement[bool]:
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return column.like(f"%{escaped}%", escape="\\")


def filters(s: Search) -> list[ColumnElement[bool]]:
    out: list[ColumnElement[bool]] = []
    result_text = cast(Job.result, String)
    out += [_like(Job.name, v) for v in s.names]
    if s.states:
        out.append(Job.state.in_(s.states))
    out += [_like(Job.worker, v) for v in s.workers]
    out += [_like(Job.args, v) for v in s.args]
    for k, v in s.kwargs.items():
        # kwargs are stored as repr: {'user': 7, 'name': 'x'}
        patterns = (f"'{k}': {v},", f"'{k}': {v}}}", f"'{k}': '{v}'")
        out.append(or_(*(_like(Job.kwargs, p) for p in patterns)))
    out += [_like(result_text, v) for v in s.results]
    for v in s.free:
        out.append(
            or_(
                _like(Job.id, v),
                _like(Job.name, v),
                _like(Job.worker, v),
                _like(Job.args, v),
                _like(Job.kwargs, v),
                _like(result_text, v),
                _like(Job.error, v),
            )
        )
    return out
