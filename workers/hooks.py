"""Hooks: code that plugs into Agentdeck's pipes, after Dramatiq's middleware.

A hook is a `Hook` with the methods it needs overridden; the others are never
called (a `Hooks` registry keeps, per hook point, only the methods that were
overridden, so a point nobody uses costs one call over an empty list). A hook
that raises is logged, with its traceback the first time and then every
`LOG_EVERY`th failure, and counted; the other hooks still run.

Registries: the web app's, filled in `create_app` (hub and janitor call it),
and `HOOKS`, the process's, which its publisher calls (a worker's per-task
counters register there, beside their signal receivers).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger("agentdeck.hooks")

LOG_EVERY = 100


class Hook:
    """Every hook point, doing nothing."""

    def on_envelope(self, raw: str, job: str) -> None:
        """A job event reached this web process's hub (its JSON text; its job id).
        Runs on the hub's one listener thread, once per event: keep it short."""

    def before_publish_batch(self) -> None:
        """The process's publisher thread is about to send a batch of events."""

    def every_tick(self) -> None:
        """The janitor's tick (about a second), in the one web process holding its lease."""

    def every_scan(self) -> None:
        """The janitor's scan for stuck jobs (every few seconds), after it."""


class Hooks:
    def __init__(self, *hooks: Hook) -> None:
        self.failures = 0
        self._failures_of: dict[str, int] = {}
        self._envelope: list[Callable[[str, str], None]] = []
        self._publish: list[Callable[[], None]] = []
        self._tick: list[Callable[[], None]] = []
        self._scan: list[Callable[[], None]] = []
        self.add(*hooks)

    def add(self, *hooks: Hook) -> None:
        for hook in hooks:
            for name, calls in (
                ("on_envelope", self._envelope),
                ("before_publish_batch", self._publish),
                ("every_tick", self._tick),
                ("every_scan", self._scan),
            ):
                if getattr(type(hook), name) is not getattr(Hook, name):
                    calls.append(getattr(hook, name))

    def on_envelope(self, raw: str, job: str) -> None:
        for call in self._envelope:
            try:
                call(raw, job)
            except Exception:
                self._failed(call)

    def before_publish_batch(self) -> None:
        self._call_each(self._publish)

    def every_tick(self) -> None:
        self._call_each(self._tick)

    def every_scan(self) -> None:
        self._call_each(self._scan)

    def _call_each(self, calls: list[Callable[[], None]]) -> None:
        for call in calls:
            try:
                call()
            except Exception:
                self._failed(call)

    def _failed(self, call: Callable[..., Any]) -> None:
        """Log a hook's failure (from inside its `except`); count it."""
        self.failures += 1
        name = getattr(call, "__qualname__", repr(call))
        n = self._failures_of[name] = self._failures_of.get(name, 0) + 1
        if n == 1:
            log.exception("hook %s failed", name)
        elif n % LOG_EVERY == 0:
            log.error("hook %s failed again (%d failures so far)", name, n)


HOOKS = Hooks()
