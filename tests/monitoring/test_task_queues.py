"""Flower's apply/async-apply/send-task send only to allowed queues, like POST /api/jobs."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from tests.monitoring.helpers import Api, wait_final

PATHS = ("apply", "async-apply", "send-task")
NAMES = ("agentdeck:dirty", "nobody-consumes-this")


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"queue": "agentdeck:dirty"}, "queue"),
        ({"queue": "nobody-consumes-this"}, "queue"),
        ({"routing_key": "agentdeck:dirty", "exchange": ""}, "routing_key"),
        ({"exchange": "celery.pidbox"}, "exchange"),
    ],
)
def test_a_task_for_a_queue_outside_the_allowlist_is_refused(
    api: Api,
    online_plain_worker: Any,
    redis_client: redis.Redis,
    options: dict[str, Any],
    field: str,
) -> None:
    key_types = {
        name: redis_client.type(name) for name in ("agentdeck:dirty", "nobody-consumes-this")
    }
    for path in PATHS:
        # when a registered task is sent with a route that is not allowed
        r = api.request("POST", f"/api/task/{path}/plain.add", json={"args": [1, 2], **options})
        # then it is a 422 naming the option
        assert r.status_code == 422, (path, r.text)
        assert r.json()["error"]["field"] == field
    # and nothing was written under those names
    assert {name: redis_client.type(name) for name in key_types} == key_types


def test_a_task_for_its_workers_queue_runs(api: Api, online_plain_worker: Any) -> None:
    # given the plain worker's queue, when a task names it, then it is sent and runs
    body = api.post("/api/task/async-apply/plain.add", json={"args": [1, 2], "queue": "plain"})
    assert wait_final(api, body["task-id"])["result"] == "3"
