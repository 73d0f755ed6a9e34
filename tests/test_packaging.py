"""`pip install .` gives a working Agentdeck: packages, package data, the console script.

The project is copied (its tracked and new files, as `git ls-files` sees them)
and installed with `--no-deps` into a fresh venv that sees this interpreter's
packages (`--system-site-packages`), so no dependency is downloaded; only the
build backend comes from the configured index, as for any `pip install .`.
Everything is then checked from a directory outside the repo with PYTHONPATH
unset, so what imports is the installed copy.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import venv
from pathlib import Path

import pytest

from launcher.commands import REPO_ROOT

CHECK = r"""
import importlib.resources, json, sys
from pathlib import Path

import celeryconfig, launcher, launcher.migrate, webapp, workers
from workers import lua
from workers.context import Context
from workers.runtime import REGISTRY, agent, load_agents

@agent(description="an agent of the user's own project")
def mine(ctx: Context, n: int = 1) -> int:
    return n

root = Path(webapp.__file__).parent.parent
print(json.dumps({
    "files": {m.__name__: m.__file__ for m in (celeryconfig, launcher, webapp, workers)},
    "lua": sorted(p.name for p in importlib.resources.files(lua).iterdir()
                  if p.name.endswith(".lua")),
    "scripts_load": bool(lua.BEAT),
    "installed": sorted(
        str(p.relative_to(root)) for d in ("webapp/templates", "webapp/static")
        for p in (root / d).rglob("*") if p.is_file()
    ),
    "head": launcher.migrate.head_revision(),
    "agents": sorted(load_agents(())),
}))
"""


def _tracked(prefix: str) -> list[str]:
    out = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", prefix],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return sorted(line for line in out.splitlines() if (REPO_ROOT / line).is_file())


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv with `pip install --no-deps <a copy of the project>` done; returns its bin/."""
    base = tmp_path_factory.mktemp("pkg")
    source = base / "src"
    source.mkdir()
    archive = base / "src.tar"
    with tarfile.open(archive, "w") as tar:
        for name in _tracked("."):
            tar.add(REPO_ROOT / name, arcname=name)
    with tarfile.open(archive) as tar:
        tar.extractall(source, filter="data")
    env_dir = base / "venv"
    venv.EnvBuilder(system_site_packages=True, with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
         str(source)],
        cwd=base, env=env, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return env_dir / "bin"


def _run(bin_dir: Path, *argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run(
        [str(bin_dir / argv[0]), *argv[1:]], cwd=cwd, env=env, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip


def test_the_installed_packages_carry_their_data(installed: Path, tmp_path: Path) -> None:
    done = _run(installed, "python", "-c", CHECK, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    site = installed.parent / "lib"
    # imported from the venv, not from the repo
    for module, path in got["files"].items():
        assert Path(path).is_relative_to(site), (module, path)
    # the Redis scripts, every template and static file, the migrations
    assert got["lua"] == sorted(Path(p).name for p in _tracked("workers/lua") if p.endswith(".lua"))
    assert got["scripts_load"]
    assert got["installed"] == sorted(_tracked("webapp/templates") + _tracked("webapp/static"))
    assert got["head"] and got["head"] == _head_in_repo()
    # an agent of the user's own project registers beside the built-in ones
    assert {"echo", "fail", "sleep", "mine"} <= set(got["agents"])


def test_the_console_script_is_the_cli(installed: Path, tmp_path: Path) -> None:
    script = installed / "agentdeck"
    assert script.is_file() and os.access(script, os.X_OK)
    done = _run(installed, "agentdeck", "--help", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "submit" in done.stdout and "run" in done.stdout
    launcher = _run(installed, "agentdeck", "run", "--help", cwd=tmp_path)
    assert "--data-dir" in launcher.stdout and "--no-worker" in launcher.stdout
    users = _run(installed, "agentdeck", "users", "--help", cwd=tmp_path)
    assert users.returncode == 0 and "add" in users.stdout, users.stderr


def _head_in_repo() -> str | None:
    from launcher.migrate import head_revision

    return head_revision()
