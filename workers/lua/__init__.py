"""The Redis scripts: the `*.lua` files beside this module, with their constants.

Each file's header states its KEYS and ARGV and names the constants it is
given. They are given here, as Lua locals put ahead of the file's first line,
from the modules that own them (`workers.envelope`: the layout;
`workers.events`: the state rules), so no script spells a state name or a
piece of the layout, and Redis' line numbers in errors are the file's. The
`.lua` files are package data: they must ship beside this module.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from importlib.resources import files

from workers.envelope import SEQ_AT, STATE_AT
from workers.events import FINAL_STATES, INITIAL_STATE, SUPERSEDED_BY

# The publish script's separators: between an event's fields in its argument (SEP),
# between its events there and in its answer (RS). JSON escapes both.
SEP = "\x1f"
RS = "\x1e"

LuaValue = str | int | Set[str] | Mapping[str, Set[str]]


def lua_string(text: str) -> str:
    """A Lua string literal: anything but printable ASCII as decimal escapes of its
    UTF-8 bytes (Lua 5.1, Redis' Lua, has no other kind)."""
    out = []
    for c in text:
        if " " <= c <= "~" and c not in "'\\":
            out.append(c)
        else:
            out.extend(f"\\{b:03d}" for b in c.encode())
    return "'" + "".join(out) + "'"


def lua_pattern(text: str) -> str:
    """A Lua pattern matching `text` literally."""
    return "".join("%" + c if c in "^$()%.[]*+-?" else c for c in text)


def _literal(value: LuaValue) -> str:
    if isinstance(value, str):
        return lua_string(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Mapping):
        pairs = sorted(value.items())
        return "{" + ", ".join(f"[{lua_string(k)}] = {_literal(v)}" for k, v in pairs) + "}"
    return "{" + ", ".join(f"[{lua_string(v)}] = true" for v in sorted(value)) + "}"


def load(name: str, **constants: LuaValue) -> str:
    """The source of `<name>.lua`, its constants defined on its first line."""
    prelude = " ".join(f"local {k} = {_literal(v)}" for k, v in constants.items())
    source = files(__name__).joinpath(f"{name}.lua").read_text(encoding="utf-8")
    return f"{prelude} {source}" if prelude else source


# An envelope's seq and state, as the publish script writes them (the first
# marker of each is the envelope's own: see `workers.envelope`).
SEQ_PATTERN = lua_pattern(SEQ_AT) + "(%d+)"
STATE_PATTERN = lua_pattern(STATE_AT) + '([^"]*)"'

PUBLISH = load(
    "publish",
    SEP=SEP,
    RS=RS,
    SEQ_PATTERN=SEQ_PATTERN,
    STATE_PATTERN=STATE_PATTERN,
    INITIAL=INITIAL_STATE.value,
    FINAL=FINAL_STATES,
    SUPERSEDED_BY=SUPERSEDED_BY,
)
READ_LOG = load("read_log", SEQ_PATTERN=SEQ_PATTERN)
CLEAR_IF_UNCHANGED = load("clear_if_unchanged")
EXPIRE_WORKER = load("expire_worker")
BEAT = load("beat")
