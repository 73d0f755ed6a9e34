"""The real Flower (2.2, requirements-dev.txt) as the oracle of our Flower API.

Flower runs on the same broker and watches a worker of the plain app that
sends task events (`-E`: Flower learns tasks only from them). The same tasks
and the same worker are asked of Flower and of us, endpoint by endpoint; the
*keys* of the answers (recursively) must agree. Values legitimately differ
(clocks, timestamps, when each side inspected).
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from launcher.commands import REPO_ROOT
from launcher.net import free_port, http_ok, wait_until
from launcher.processes import ManagedProcess
from tests.monitoring import plain_app
from tests.monitoring.conftest import PlainWorker
from tests.monitoring.helpers import Api, eventually, wait_final, wait_for_worker
from tests.support import Platform, WebService
from tests.support.services import Service

FINAL = ("SUCCESS", "FAILURE", "REVOKED")
EVENTS_QUEUE = "plain-events"  # only the events worker consumes it: Flower sees every task
# Objects whose keys are values (a count per task name), not fields.
VALUE_MAPS = {"stats.total"}
# Keys one side has and the other has not, on purpose (docs/monitoring.md), with why.
ALLOWED: dict[str, str] = {}  # none today


class Flower(Service):
    """`celery -A tests.monitoring.plain_app flower` on 127.0.0.1, API without auth."""

    def __init__(self, platform: Platform) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        argv = [
            sys.executable, "-m", "celery", "-A", "tests.monitoring.plain_app", "flower",
            f"--port={self.port}", "--address=127.0.0.1",
        ]  # fmt: skip
        env = {**platform.env(), "FLOWER_UNAUTHENTICATED_API": "true"}
        super().__init__(
            ManagedProcess(
                "flower",
                argv,
                env=env,
                cwd=REPO_ROOT,
                log_path=platform.output_dir / "flower.log",
            )
        )
        self.session = requests.Session()
        self.session.trust_env = False  # never through a proxy

    def wait_ready(self, timeout: float) -> None:
        ok = wait_until(
            lambda: http_ok(self.url + "/api/task/types"),
            timeout,
            interval=0.1,
            abort=lambda: not self.running,
        )
        assert ok, f"Flower did not answer within {timeout}s:\n{self.tail()}"

    def response(self, path: str, **params: Any) -> requests.Response:
        return self.session.get(self.url + path, params=params, timeout=20)

    def get(self, path: str, **params: Any) -> Any:
        r = self.response(path, **params)
        assert r.status_code == 200, f"Flower GET {path}: {r.status_code} {r.text[:300]}"
        return r.json()


@pytest.fixture
def events_worker(platform: Platform, web: WebService, api: Api) -> Iterator[PlainWorker]:
    """A plain worker of its own with task events on, online in our web."""
    w = PlainWorker(platform, concurrency=1, pool="solo", queue=EVENTS_QUEUE, events=True)
    w.start()
    try:
        wait_for_worker(api, w.hostname, online=True, timeout=20)
        yield w
    finally:
        w.stop(timeout=10)


@pytest.fixture
def flower(platform: Platform) -> Iterator[Flower]:
    f = Flower(platform)
    f.start(timeout=20)
    try:
        yield f
    finally:
        f.stop(timeout=10)  # by its PID (its process group), as every ManagedProcess


def key_paths(value: Any, path: str = "") -> set[str]:
    """Every key of every object in `value`, as a dotted path (`[]` for list items)."""
    out: set[str] = set()
    if isinstance(value, dict):
        if path in VALUE_MAPS:
            return out
        for k, v in value.items():
            p = f"{path}.{k}" if path else str(k)
            out.add(p)
            out |= key_paths(v, p)
    elif isinstance(value, list):
        for item in value:
            out |= key_paths(item, f"{path}[]")
    return out


def differences(what: str, theirs: Any, ours: Any) -> list[str]:
    """One line per key that only one side has, other than the allowed ones."""
    t, o = key_paths(theirs), key_paths(ours)
    lines = [f"{what}: only Flower has {k}" for k in sorted(t - o) if k not in ALLOWED]
    lines += [f"{what}: only we have {k}" for k in sorted(o - t) if k not in ALLOWED]
    return lines


def test_our_flower_api_has_flowers_keys(
    api: Api, events_worker: PlainWorker, flower: Flower
) -> None:
    host = events_worker.hostname
    # given Flower listening to the broker's events: it has heard the worker's heartbeat
    eventually(lambda: flower.get("/api/workers", status="true"), lambda s: host in s, 15)

    # when the worker runs a success, a failure, a retried task and a revoked one
    def send(task: Any, *args: Any, **options: Any) -> str:
        return str(task.apply_async(args, queue=EVENTS_QUEUE, **options).id)

    revoked_id = str(uuid.uuid4())
    reply = plain_app.app.control.revoke(revoked_id, destination=[host], reply=True, timeout=5)
    assert reply, "the worker did not confirm the revoke"
    ids = {
        "success": send(plain_app.add, 20, 22),
        "failure": send(plain_app.boom, "oracle"),
        "retried": send(plain_app.retry_once, uuid.uuid4().hex),
        "revoked": send(plain_app.add, 1, 1, task_id=revoked_id),
    }

    # then both know each of them in its final state (bounded waits)
    for kind, task_id in ids.items():
        assert wait_final(api, task_id)["state"] in FINAL, kind

        def flower_info(task_id: str = task_id) -> dict[str, Any]:
            r = flower.response(f"/api/task/info/{task_id}")
            return r.json() if r.status_code == 200 else {}

        eventually(flower_info, lambda t: t.get("state") in FINAL, 15)

    # and every endpoint that reads answers with Flower's keys
    diffs: list[str] = []
    for kind, task_id in ids.items():
        path = f"/api/task/info/{task_id}"
        diffs += differences(f"{path} ({kind})", flower.get(path), api.get(path))
        path = f"/api/task/result/{task_id}"
        diffs += differences(f"{path} ({kind})", flower.get(path), api.get(path))

    theirs = flower.get("/api/tasks")
    ours = api.get("/api/tasks", params={"limit": 100})
    for kind, task_id in ids.items():
        assert task_id in theirs and task_id in ours, kind
        diffs += differences(f"/api/tasks[{kind}]", theirs[task_id], ours[task_id])

    # by worker too: the revoked task, which no worker received, is listed under the
    # worker that revoked it, by both
    theirs = flower.get("/api/tasks", workername=host)
    ours = api.get("/api/tasks", params={"workername": host})
    assert set(theirs) == set(ours) == set(ids.values())
    for kind, task_id in ids.items():
        assert theirs[task_id]["worker"] == ours[task_id]["worker"] == host, kind
        diffs += differences(f"/api/tasks?workername[{kind}]", theirs[task_id], ours[task_id])

    theirs = flower.get("/api/task/types")
    ours = api.get("/api/task/types")
    diffs += differences("/api/task/types", theirs, ours)
    assert set(theirs["task-types"]) <= set(ours["task-types"])

    # Flower lists a worker's queues from its own inspection, which may not have run yet
    flower.get("/api/workers", refresh="true")
    theirs = eventually(
        lambda: flower.get("/api/queues/length"),
        lambda q: EVENTS_QUEUE in {x["name"] for x in q["active_queues"]},
        20,
    )
    ours = api.get("/api/queues/length")
    diffs += differences("/api/queues/length", theirs, ours)
    assert EVENTS_QUEUE in {q["name"] for q in theirs["active_queues"]}
    assert EVENTS_QUEUE in {q["name"] for q in ours["active_queues"]}

    # the list first: Flower merges a one-worker inspection into what it lists
    theirs = flower.get("/api/workers", refresh="true")
    ours = api.get("/api/workers")
    diffs += differences("/api/workers", theirs[host], ours[host])
    theirs = flower.get("/api/workers", workername=host, refresh="true")
    ours = api.get("/api/workers", params={"workername": host})
    diffs += differences(f"/api/workers?workername={host}", theirs[host], ours[host])
    theirs = flower.get("/api/workers", status="true")
    ours = api.get("/api/workers", params={"status": "true"})
    assert theirs[host] is True and ours[host] is True

    assert not diffs, "keys that differ from Flower's:\n" + "\n".join(diffs)
