"""A module of agents that does not import fails only what it could have held."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from workers import runtime, settings
from workers.runtime import AgentModuleError, UnknownAgent, get_agent, load_agents


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path


def _modules(monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    monkeypatch.setattr(settings, "_current", settings.Settings(agent_modules=names))


def test_other_agents_still_run_when_a_module_is_broken(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken, good = f"broken_{uuid.uuid4().hex[:8]}", f"good_{uuid.uuid4().hex[:8]}"
    (project / f"{broken}.py").write_text("raise ValueError('nope')\n")
    (project / f"{good}.py").write_text(
        "from workers.runtime import agent\n\n\n"
        f"@agent()\ndef {good}(ctx) -> str:\n    return 'ok'\n"
    )
    _modules(monkeypatch, broken, good)
    # the built-in agents and the good module's are there, whatever the order
    assert get_agent("echo").name == "echo"
    assert get_agent(good).name == good
    # an agent nobody registered: the module that might have held it is named
    with pytest.raises(AgentModuleError) as failed:
        get_agent("nobody_has_this")
    assert failed.value.module == broken
    assert f"cannot import agent module {broken!r}" in str(failed.value)
    assert "ValueError: nope" in str(failed.value)
    assert f"{broken}.py:1" in str(failed.value)
    # and load_agents says so too, every time (a failed import is not cached)
    with pytest.raises(AgentModuleError):
        load_agents()
    assert broken not in sys.modules
    monkeypatch.delitem(runtime.REGISTRY, good)


def test_no_modules_means_unknown_agent(monkeypatch: pytest.MonkeyPatch) -> None:
    _modules(monkeypatch)
    with pytest.raises(UnknownAgent):
        get_agent("nobody_has_this")


def test_a_syntax_error_names_the_file_and_line(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"typo_{uuid.uuid4().hex[:8]}"
    (project / f"{name}.py").write_text("def broken(:\n    pass\n")
    with pytest.raises(AgentModuleError) as failed:
        load_agents((name,))
    message = str(failed.value)
    assert message.startswith(f"cannot import agent module {name!r} (AGENTDECK_AGENT_MODULES)")
    assert "SyntaxError" in message and f"{name}.py, line 1" in message
