"""Agent modules load when a worker (or the web server) starts, loudly.

Real processes: workers started the ways people start them (the `celery`
script, `python -m celery`) in a directory of their own that holds the
agents' module, and a web server given a module that does not import.
"""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path

import pytest

from launcher.commands import REPO_ROOT, WORKER_READY, worker_argv
from launcher.processes import ManagedProcess
from tests.support import Platform, WebService, WorkerService
from tests.support.http import post
from workers.runtime import RUN_AGENT_TASK

CELERY_SCRIPT = Path(sys.executable).parent / "celery"
GOOD = """
from workers.context import Context
from workers.runtime import agent


@agent(description="Greets from the user's own project.")
def {name}(ctx: Context, who: str = "world") -> str:
    ctx.log("greeting " + who)
    return "hello " + who
"""
BROKEN = """
import json  # the line below is where it breaks

raise RuntimeError("agent module exploded at import")
"""


def _uid() -> str:
    return uuid.uuid4().hex[:8]


def _worker(
    platform: Platform,
    cwd: Path,
    modules: str,
    *,
    script: bool,
    queue: str,
    name: str,
) -> ManagedProcess:
    """A worker started in `cwd` (the project's directory) by the `celery` script or by
    `python -m celery`; the repo is on PYTHONPATH (as an installed Agentdeck would be)."""
    argv = worker_argv(concurrency=1, hostname=f"{name}-{_uid()}@%h", queues=(queue,))
    if script:
        argv = [str(CELERY_SCRIPT), *argv[3:]]  # drop `python -m celery`
    env = platform.env(AGENTDECK_AGENT_MODULES=modules)
    return ManagedProcess(
        name, argv, env=env, cwd=cwd, log_path=platform.output_dir / f"{name}.log"
    )


@pytest.mark.parametrize("script", [True, False], ids=["celery-script", "python-m-celery"])
def test_a_worker_imports_agent_modules_from_its_working_directory(
    platform: Platform, tmp_path: Path, script: bool
) -> None:
    # given a project directory holding a module of agents, and a worker started there
    agent_name = f"greet_{_uid()}"
    module = f"myagents_{_uid()}"
    (tmp_path / f"{module}.py").write_text(GOOD.format(name=agent_name))
    queue = f"agents-{_uid()}"
    proc = _worker(
        platform, tmp_path, module, script=script, queue=queue, name=f"cwd-{int(script)}"
    )
    proc.start()
    try:
        proc.wait_for_line(WORKER_READY, timeout=60)
        # then the start-up log names the agent before "ready."
        assert agent_name in proc.tail(200), proc.tail()
        # when a job of that agent reaches it
        from workers.celery_app import app

        result = app.send_task(RUN_AGENT_TASK, args=[agent_name, {"who": "you"}], queue=queue)
        # then it runs (the module is imported at run time too, in the pool's process)
        assert result.get(timeout=30) == "hello you"
    finally:
        assert proc.stop(timeout=15) == 0, proc.tail()


@pytest.mark.parametrize("script", [True, False], ids=["celery-script", "python-m-celery"])
def test_a_worker_whose_agent_module_does_not_import_stops_with_one_line(
    platform: Platform, tmp_path: Path, script: bool
) -> None:
    # given a module that raises at import, next to one that is missing altogether
    module = f"broken_{_uid()}"
    (tmp_path / f"{module}.py").write_text(BROKEN)
    proc = _worker(
        platform, tmp_path, module, script=script, queue=f"q-{_uid()}", name=f"bad-{int(script)}"
    )
    # when the worker starts, then it exits at once, before consuming anything
    proc.start()
    try:
        code = proc.wait(timeout=60)
        output = proc.tail(200)
        assert code not in (None, 0), output
        assert "ready." not in output and "Traceback" not in output, output
        lines = [line for line in output.splitlines() if module in line]
        # one line naming the module, the error and where it broke
        assert len(lines) == 1, output
        assert "cannot import agent module" in lines[0]
        assert "RuntimeError: agent module exploded at import" in lines[0]
        assert f"{module}.py:4" in lines[0]
    finally:
        proc.kill()


def test_a_missing_agent_module_stops_the_worker_naming_it(
    platform: Platform, tmp_path: Path
) -> None:
    module = f"no_such_agents_{_uid()}"
    proc = _worker(platform, tmp_path, module, script=True, queue=f"q-{_uid()}", name="missing")
    proc.start()
    try:
        assert proc.wait(timeout=60) not in (None, 0), proc.tail()
        lines = [line for line in proc.tail(200).splitlines() if module in line]
        assert lines == [
            f"agentdeck worker: not starting: cannot import agent module {module!r} "
            f"(AGENTDECK_AGENT_MODULES): ModuleNotFoundError: No module named {module!r}"
        ], proc.tail()
    finally:
        proc.kill()


def test_the_web_server_refuses_to_start_without_its_agent_modules(
    platform: Platform, tmp_path: Path
) -> None:
    # given a module of agents that does not import, on the web server's PYTHONPATH
    module = f"broken_web_{_uid()}"
    (tmp_path / f"{module}.py").write_text(BROKEN)
    pythonpath = os.pathsep.join([str(REPO_ROOT), str(tmp_path)])
    web = WebService(
        platform,
        name="web-broken-agents",
        extra_env={"AGENTDECK_AGENT_MODULES": module, "PYTHONPATH": pythonpath},
    )
    # when it starts, then it stops (no respawning), with the module and error in one line
    web.proc.start()
    try:
        assert web.proc.wait(timeout=60) not in (None, 0), web.tail()
        output = web.tail(200)
        assert "Traceback" not in output, output
        lines = [line for line in output.splitlines() if module in line]
        assert len(lines) == 1, output
        assert lines[0].startswith("agentdeck web: not starting: cannot import agent module")
        assert "RuntimeError: agent module exploded at import" in lines[0]
        assert output.count("Booting worker") == 1, output
    finally:
        web.kill()


def test_a_job_for_a_queue_no_online_worker_consumes_is_accepted_with_a_warning(
    platform: Platform, worker: WorkerService, web: WebService
) -> None:
    # a queue the web allows (AGENTDECK_QUEUES) but no worker consumes
    idle = f"idle-{_uid()}"
    own_web = WebService(
        platform, name="web-queues", extra_env={"AGENTDECK_QUEUES": f"celery,{idle}"}
    )
    own_web.start()
    try:
        body = {"agent": "echo", "input": {"text": "hi", "steps": 0, "delay": 0}}
        # the session's worker consumes Celery's default queue: no warning
        served = post(own_web.url + "/api/jobs", json=body)
        assert served.status_code == 202, served.text
        assert served.json()["warnings"] == []
        # nobody consumes the idle one: accepted, and the answer says so
        waiting = post(own_web.url + "/api/jobs", json={**body, "queue": idle})
        assert waiting.status_code == 202, waiting.text
        job = waiting.json()
        assert job["state"] == "PENDING" and job["queue"] == idle
        [warning] = job["warnings"]
        assert warning["code"] == "no_worker" and warning["queue"] == idle
        assert idle in warning["message"]
    finally:
        own_web.stop()
