"""The replay cursor: matches the steps a run asks for against those recorded.

Pure logic: given the recorded steps of a job, in order, each step the agent's
code asks for either has its record (replay it) or is new (run it). A run
whose code asks for other steps than were recorded, in another order, is not
the same run any more: that is a `NonDeterministicReplay`, raised before any
wrong data reaches the agent.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class StepKind(StrEnum):
    RUN = "run"  # ctx.run: a function's JSON result
    TOOL = "tool"  # ctx.run_tool: a recorded tool call
    ASK = "ask"  # ctx.ask: a person's answer
    SLEEP = "sleep"  # a long ctx.sleep / ctx.sleep_until
    SPAWN = "spawn"  # ctx.spawn: a child job's id
    WAIT = "wait"  # ctx.wait: the children's results


class StepStatus(StrEnum):
    DONE = "done"
    FAILED = "failed"
    WAITING = "waiting"  # the run is suspended on it
    CANCELLED = "cancelled"  # the job was cancelled while it waited


@dataclass(frozen=True)
class RecordedStep:
    idx: int
    name: str
    kind: StepKind
    status: StepStatus
    result: Any = None
    error: str | None = None
    detail: Any = None
    wake_at: float | None = None


class NonDeterministicReplay(RuntimeError):
    """The agent's code asked for other steps than its recorded run did."""


class StepFailed(RuntimeError):
    """A recorded step raised: its message is the original error's type and text. The
    run that ran the step and every later replay of it raise this same exception (the
    original is its __cause__ the first time), so handling code behaves the same."""


class JobCancelled(Exception):
    """Raised inside an agent when its job was cancelled."""


class Replay:
    """The recorded steps of one job, and where the run's code has got to."""

    def __init__(self, recorded: list[RecordedStep]) -> None:
        self._recorded = {step.idx: step for step in recorded}
        self.position = 0

    @property
    def recorded(self) -> int:
        return len(self._recorded)

    def next(self, name: str, kind: StepKind) -> tuple[int, RecordedStep | None]:
        """The index of the step the code asks for now, and its record if it has one."""
        idx = self.position
        self.position += 1
        found = self._recorded.get(idx)
        if found is not None and (found.name != name or found.kind != kind):
            raise NonDeterministicReplay(
                f"non-deterministic replay at step {idx}: the recorded run did "
                f"{found.kind.value} {found.name!r} here, this run asks for "
                f"{kind.value} {name!r}; a run must ask for its steps in the same order"
            )
        return idx, found

    def remember(self, step: RecordedStep) -> None:
        """A step this run has just recorded (or found recorded by its earlier self)."""
        self._recorded[step.idx] = step
