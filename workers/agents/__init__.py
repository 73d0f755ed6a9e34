"""Built-in agents, always registered. The outside tests rely on their names and inputs."""

from __future__ import annotations

from workers.context import Context
from workers.runtime import agent


@agent(description="Runs `steps` steps, streams `text` word by word, returns `text`.")
def echo(ctx: Context, text: str, steps: int = 3, delay: float = 0.05) -> str:
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


@agent(description="Sleeps `seconds` in small slices, stopping if cancelled.")
def sleep(ctx: Context, seconds: float) -> float:
    ctx.sleep(seconds)
    return seconds
