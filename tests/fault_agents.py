"""Agents the fault tests use (loaded through AGENTDECK_AGENT_MODULES)."""

from __future__ import annotations

import os
import signal
import time

from workers.context import Context
from workers.runtime import agent


@agent(description="Streams `count` numbered chunks (padded to `size`), `delay` s apart.")
def chatty(ctx: Context, count: int = 100, delay: float = 0.0, size: int = 0) -> int:
    for i in range(count):
        ctx.output(f"chunk {i + 1}\n".ljust(size, "."))
        if delay:
            ctx.sleep(delay)
    return count


@agent(description="Kills the process running it (an OOM kill, say).", on_lost="fail")
def crash(ctx: Context) -> None:
    ctx.log("about to die")
    os.kill(os.getpid(), signal.SIGKILL)


@agent(description="Kills its process on every run.", on_lost="requeue", max_redeliveries=2)
def crash_always(ctx: Context) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


@agent(description="Asks a person a question and returns the answer.")
def ask(ctx: Context, question: str = "continue?") -> object:
    return ctx.ask(question, timeout=60)


@agent(description="Sleeps `seconds`, past its 1 s time limit.", time_limit=1)
def overrun(ctx: Context, seconds: float = 30) -> float:
    ctx.sleep(seconds, suspend=False)  # on the worker: the time limit must catch it
    return seconds


@agent(description="Swallows its soft time limit and runs on (1 s limit).", time_limit=1)
def stubborn(ctx: Context, seconds: float = 30) -> float:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            time.sleep(0.05)
        except BaseException:  # the soft limit's exception, ignored on purpose
            ctx.log("ignoring the soft time limit")
    return seconds


@agent(description="Tells whether its process can read `needle` (the admin token) anywhere.")
def secrets_seen(ctx: Context, needle: str) -> dict[str, bool]:
    from workers.settings import get_settings

    return {
        "environ_name": "AGENTDECK_ADMIN_TOKEN" in os.environ,
        "environ_value": any(needle in value for value in os.environ.values()),
        "settings": needle in (get_settings().admin_token, ctx.publisher.settings.admin_token),
    }


@agent(
    description="Streams and returns text with a lone surrogate and a NUL, which SQL cannot hold."
)
def surrogate(ctx: Context) -> str:
    text = "a" + chr(0xD800) + "b" + chr(0) + "c"
    ctx.output(text)
    return text


@agent(description="Reports `done` of `total` progress, then succeeds without reporting more.")
def partial_progress(ctx: Context, done: int = 1, total: int = 4) -> int:
    ctx.progress(done, total)
    return done
