"""The agent runtime: the `@agent` decorator, the registry and `AgentSpec`.

An agent is a function `fn(ctx, **input)`. Its input schema comes from the
type hints of its parameters after `ctx` (a pydantic model is built from
them), is served as JSON Schema and validates every submission.
"""

from __future__ import annotations

import importlib
import inspect
import math
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, create_model


class InputError(ValueError):
    """Input that does not fit the agent's schema; `field` names the first culprit."""

    def __init__(self, field: str, message: str, errors: list[dict[str, Any]] | None = None):
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message
        self.errors = errors or []


class UnknownAgent(LookupError):
    pass


class AgentModuleError(ImportError):
    """A module named in AGENTDECK_AGENT_MODULES failed to import: names it and the error."""

    def __init__(self, module: str, error: BaseException) -> None:
        self.module = module
        self.error = error
        where = ""  # where it broke: the module's own line, or the one it imported
        frames = traceback.extract_tb(error.__traceback__)
        if frames and not isinstance(error, (SyntaxError, ModuleNotFoundError)):
            where = f" (at {frames[-1].filename}:{frames[-1].lineno})"
        super().__init__(
            f"cannot import agent module {module!r} (AGENTDECK_AGENT_MODULES): "
            f"{type(error).__name__}: {error}{where}",
            name=module,
        )


@dataclass(frozen=True)
class AgentSpec:
    name: str
    description: str
    fn: Callable[..., Any]
    input_model: type[BaseModel]
    on_lost: str = "requeue"  # what a worker crash does to a run: "requeue" or "fail"
    max_redeliveries: int = 3
    time_limit: float | None = None  # seconds a run may take; None: AGENTDECK_RUN_TIME_LIMIT

    def schema(self) -> dict[str, Any]:
        return self.input_model.model_json_schema()

    def time_limits(self, default: float) -> tuple[float, float]:
        """(soft, hard) for one run: see `time_limits`."""
        return time_limits(self.time_limit or default)

    def validate(self, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise InputError("input", "must be a JSON object")
        if (where := _non_finite(data)) is not None:
            raise InputError(where, "must be a finite number (not NaN or infinite)")
        try:
            return self.input_model.model_validate(data).model_dump(mode="json")
        except ValidationError as exc:
            errors = [
                {"field": ".".join(str(p) for p in e["loc"]) or "input", "message": e["msg"]}
                for e in exc.errors()
            ]
            first = errors[0] if errors else {"field": "input", "message": str(exc)}
            raise InputError(first["field"], first["message"], errors) from exc

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "input_schema": self.schema(),
            "on_lost": self.on_lost,
        }


def time_limits(limit: float) -> tuple[float, float]:
    """(soft, hard) time limits for a run allowed `limit` seconds.

    At the soft limit the agent's code gets an exception (the job fails with a
    clear error); the hard limit, a little later, kills a process whose agent
    caught that exception and ran on, so the worker process is freed anyway."""
    return limit, limit + min(max(limit * 0.1, 2.0), 60.0)


def _non_finite(data: Any) -> str | None:
    """Where in `data` a NaN or infinity sits (JSON `1e999` parses to inf), else None.

    Walks with a stack: input nests as deep as the JSON parser allowed."""
    stack: list[tuple[str, Any]] = [("", data)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, float) and not math.isfinite(value):
            return path or "input"
        if isinstance(value, dict):
            stack.extend((f"{path}.{k}" if path else str(k), v) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((f"{path}.{i}" if path else str(i), v) for i, v in enumerate(value))
    return None


REGISTRY: dict[str, AgentSpec] = {}


def _input_model(name: str, fn: Callable[..., Any]) -> type[BaseModel]:
    params = list(inspect.signature(fn).parameters.values())[1:]  # drop ctx
    fields: dict[str, Any] = {}
    hints = inspect.get_annotations(fn, eval_str=True)
    for p in params:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        annotation = hints.get(p.name, Any)
        default = ... if p.default is inspect.Parameter.empty else p.default
        fields[p.name] = (annotation, default)
    model_name = "".join(part.capitalize() for part in name.replace("-", "_").split("_")) + "Input"
    return create_model(  # type: ignore[call-overload, no-any-return]
        model_name, __config__=ConfigDict(extra="forbid", allow_inf_nan=False), **fields
    )


def agent(
    name: str | None = None,
    *,
    description: str | None = None,
    on_lost: str = "requeue",
    max_redeliveries: int = 3,
    time_limit: float | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register `fn(ctx, **input)` as an agent under `name` (default: the function's name).

    `time_limit`: seconds one run may take (default `AGENTDECK_RUN_TIME_LIMIT`);
    past it the run fails with a "time limit exceeded" error."""
    if on_lost not in ("requeue", "fail"):
        raise ValueError("on_lost must be 'requeue' or 'fail'")
    if time_limit is not None and not 0 < time_limit < math.inf:
        raise ValueError("time_limit must be a positive number of seconds")

    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        agent_name = name or fn.__name__
        doc = description if description is not None else inspect.getdoc(fn) or ""
        REGISTRY[agent_name] = AgentSpec(
            name=agent_name,
            description=doc,
            fn=fn,
            input_model=_input_model(agent_name, fn),
            on_lost=on_lost,
            max_redeliveries=max_redeliveries,
            time_limit=time_limit,
        )
        return fn

    return register


def get_agent(name: str) -> AgentSpec:
    """The agent `name`. Modules are loaded only when it is not registered yet, so a
    module that fails to import fails only the jobs of agents it could have held."""
    if name not in REGISTRY:
        try:
            load_agents()
        except AgentModuleError:
            if name not in REGISTRY:
                raise
    try:
        return REGISTRY[name]
    except KeyError:
        raise UnknownAgent(name) from None


def load_agents(extra_modules: tuple[str, ...] | None = None) -> dict[str, AgentSpec]:
    """Import the built-in agents and those named in AGENTDECK_AGENT_MODULES.

    Every module is tried; the first that fails to import raises `AgentModuleError`
    (naming the module and its error) once the others are loaded."""
    if extra_modules is None:
        from workers.settings import get_settings

        extra_modules = get_settings().agent_modules
    importlib.import_module("workers.agents")
    failed: AgentModuleError | None = None
    for module in extra_modules:
        if module in sys.modules:
            continue
        try:
            importlib.import_module(module)
        except Exception as exc:
            failed = failed or AgentModuleError(module, exc)
    if failed is not None:
        raise failed
    return REGISTRY


# The Celery task that runs an agent; the web app sends it by this name.
RUN_AGENT_TASK = "agentdeck.run_agent"
