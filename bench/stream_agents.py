"""The streaming benchmark's agent (loaded with AGENTDECK_AGENT_MODULES=bench.stream_agents)."""

from __future__ import annotations

import time

from workers.context import Context
from workers.runtime import agent


@agent(description="Streams `count` output chunks, `rate` a second, from `start_at` (epoch s).")
def stream(ctx: Context, count: int = 1000, rate: float = 100.0, start_at: float = 0.0) -> int:
    wait = start_at - time.time()
    if wait > 0:
        time.sleep(wait)  # every watcher is subscribed by then: the events are all live
    begun = time.monotonic()
    for i in range(count):
        ctx.output(f"chunk {i:06d} of the stream, about as long as a line of model output")
        pause = begun + (i + 1) / rate - time.monotonic()
        if pause > 0:
            time.sleep(pause)
    return count
