"""Agents for the durable-run tests. Each counts its real executions of a step in Redis
(`durable:<marker>:<step>`), so a test can tell a replay from a second run."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

from pydantic import BaseModel

from workers.context import Context
from workers.runtime import agent


def _counted(ctx: Context, marker: str, step: str, value: Any = None) -> Any:
    ctx.redis.incr(f"durable:{marker}:{step}")
    return value if value is not None else step


class Decision(BaseModel):
    approve: bool
    note: str = ""


@agent(description="Two recorded steps, a typed question, one more step.")
def steps_then_ask(ctx: Context, marker: str) -> dict[str, Any]:
    a = ctx.run("draft", _counted, ctx, marker, "draft", {"text": "draft 1"})
    b = ctx.run_tool("lookup", lambda **kw: _counted(ctx, marker, "lookup", kw), q="x")
    decision = ctx.ask("approve the draft?", schema=Decision)
    c = ctx.run("act", _counted, ctx, marker, "act", "acted" if decision.approve else "dropped")
    return {"draft": a, "lookup": b, "approve": decision.approve, "act": c}


@agent(description="Sleeps until `seconds` from its first run, without a worker.")
def nap(ctx: Context, marker: str, seconds: float = 2.0) -> float:
    started = ctx.run("start", lambda: time.time())
    ctx.sleep_until(started + seconds)
    _counted(ctx, marker, "after")
    return time.time() - started


@agent(description="Spawns echo children and returns their results.")
def parent_of(ctx: Context, texts: list[str], fail_one: bool = False) -> list[Any]:
    kids = [ctx.spawn("echo", {"text": t, "steps": 1, "delay": 0}) for t in texts]
    if fail_one:
        kids.append(ctx.spawn("fail", {"message": "child says no"}))
    return list(ctx.wait(kids))


@agent(description="Step two fails until the flag `durable:<marker>:fixed` is set.")
def fails_at_two(ctx: Context, marker: str) -> str:
    ctx.run("one", _counted, ctx, marker, "one")

    def two() -> str:
        _counted(ctx, marker, "two")
        if not ctx.redis.exists(f"durable:{marker}:fixed"):
            raise RuntimeError("step two is broken")
        return "two"

    ctx.run("two", two)
    return "done"


@agent(description="Asks, then asks for steps named by a Redis value (changed between runs).")
def shifty(ctx: Context, marker: str) -> str:
    raw = ctx.redis.get(f"durable:{marker}:name")
    name = raw.decode() if isinstance(raw, bytes) else str(raw or "first")
    ctx.run(name, lambda: name)
    ctx.ask("go on?")
    return name


@agent(description="Records a step, then its process dies (once) inside the next one.")
def dies_in_two(ctx: Context, marker: str) -> str:
    ctx.run("one", _counted, ctx, marker, "one")

    def two() -> str:
        if ctx.redis.incr(f"durable:{marker}:two") == 1:
            os.kill(os.getpid(), signal.SIGKILL)
        return "two"

    return str(ctx.run("two", two))


SCORE = {
    "type": "object",
    "properties": {
        "score": {"type": "integer", "minimum": 1, "maximum": 5, "title": "Score"},
        "why": {"type": "string", "title": "Why"},
    },
    "required": ["score"],
}


@agent(description="Asks for a score from 1 to 5 (a JSON Schema question) and returns it.")
def asks_for_a_score(ctx: Context) -> Any:
    ctx.run("draft", lambda: "draft")
    return ctx.ask("how good is the draft?", schema=SCORE)


@agent(description="Spawns `n` sleep children (each holding a worker `seconds`), waits for them.")
def waits_for_sleepers(ctx: Context, n: int = 2, seconds: float = 1.5) -> list[Any]:
    kids = [ctx.spawn("sleep", {"seconds": seconds}) for _ in range(n)]
    return list(ctx.wait(kids))


def _stop_once(ctx: Context, marker: str, place: str, stop_at: str, limit: float = 60.0) -> None:
    """At `place`, if it is `stop_at`, on the first pass only: say so (RPUSH on
    `durable:<marker>:at`, which the test BLPOPs) and wait until the test pushes on
    `durable:<marker>:go` (it SIGKILLs the worker instead, mostly). Later passes, those
    of a run after the kill, go straight on."""
    if place != stop_at or ctx.redis.incr(f"durable:{marker}:passes:{place}") > 1:
        return
    ctx.redis.rpush(f"durable:{marker}:at", place)
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:  # short BLPOPs: the client's socket timeout is 5 s
        if ctx.redis.blpop([f"durable:{marker}:go"], timeout=1):
            return
    raise TimeoutError(f"nobody let the run go on from {place!r} within {limit:g} s")


@agent(description="Three recorded steps (and a question with `ask`); stops once at `stop_at`.")
def gated(ctx: Context, marker: str, stop_at: str = "", ask: bool = False) -> dict[str, Any]:
    one = ctx.run("one", _counted, ctx, marker, "one")
    _stop_once(ctx, marker, "between one and two", stop_at)

    def two() -> str:
        _counted(ctx, marker, "two")
        _stop_once(ctx, marker, "inside two", stop_at)
        return "two"

    done = {"one": one, "two": ctx.run("two", two)}
    if ask:
        done["answer"] = ctx.ask("go on?", schema={"type": "string", "maxLength": 100})
    done["three"] = ctx.run("three", _counted, ctx, marker, "three")
    return done


@agent(description="A step that fails, handled by the agent, then a question.")
def handles_a_failed_step(ctx: Context, marker: str) -> str:
    def flaky() -> str:
        _counted(ctx, marker, "flaky")
        raise ValueError("the service said no")

    try:
        got = ctx.run("flaky", flaky)
    except Exception as exc:  # what each execution of the run caught, in order
        ctx.redis.rpush(f"durable:{marker}:caught", type(exc).__name__)
        got = f"handled: {exc}"
    ctx.ask("go on?")
    return str(got)
