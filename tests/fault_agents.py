"""Agents the fault tests use (loaded through AGENTDECK_AGENT_MODULES)."""

from __future__ import annotations

import os
import signal

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


@agent(description="Streams and returns text holding a lone surrogate, which UTF-8 cannot hold.")
def surrogate(ctx: Context) -> str:
    text = "a" + chr(0xD800) + "b"
    ctx.output(text)
    return text
