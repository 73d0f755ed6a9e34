"""Built-in agents, always registered. The outside tests rely on their names and inputs."""

from __future__ import annotations

import logging
from typing import Annotated

from pydantic import Field

from workers.context import Context
from workers.runtime import agent

# Bounds on what a submission may ask for: a run is also cut off at its time
# limit, but an absurd input should be refused up front, not run for an hour.
Delay = Annotated[float, Field(ge=0, le=60)]
Steps = Annotated[int, Field(ge=0, le=1000)]
Seconds = Annotated[float, Field(ge=0, le=86_400)]


@agent(description="Runs `steps` steps, streams `text` word by word, returns `text`.")
def echo(ctx: Context, text: str, steps: Steps = 3, delay: Delay = 0.05) -> str:
    words = text.split(" ")
    for i in range(steps):
        with ctx.step(f"step {i + 1}"):
            ctx.progress(i, steps)
            ctx.sleep(delay)
    for i, word in enumerate(words):
        ctx.output(word if i == 0 else " " + word)
    ctx.progress(steps, steps)
    return text


@agent(description="Runs one step, then raises with `message`.")
def fail(ctx: Context, message: str) -> None:
    with ctx.step("about to fail"):
        ctx.log("failing on purpose", "warning")
    raise RuntimeError(message)


@agent(description="Sleeps `seconds` on its worker (holding it), stopping if cancelled.")
def sleep(ctx: Context, seconds: Seconds) -> float:
    ctx.sleep(seconds, suspend=False)
    return seconds


@agent(description="A tour of the context: steps, tool calls, logs, progress and output.")
def research(
    ctx: Context, topic: str, sources: Steps = 3, delay: Delay = 0.05
) -> dict[str, object]:
    notes: list[str] = []
    for i in range(sources):
        with ctx.step(f"source {i + 1}"):
            with ctx.tool("search", {"query": topic, "page": i + 1}) as call:
                ctx.sleep(delay)
                found = f"{topic}: finding {i + 1}"
                call.returned({"hits": 1, "first": found})
            logging.getLogger(__name__).info("read %s", found)
            notes.append(found)
            ctx.progress(i + 1, sources)
    with ctx.step("write up"):
        for note in notes:
            ctx.output(note + "\n")
    return {"topic": topic, "notes": notes}


# The example of a durable run (recorded steps, a typed question, a child job).
from workers.agents import approval as _approval  # noqa: E402, F401
