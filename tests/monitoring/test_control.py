"""Controls through Flower's API: pool grow/shrink, revoke, and retry of a failed task."""

from __future__ import annotations

import uuid

from tests.monitoring import plain_app
from tests.monitoring.conftest import PlainWorker
from tests.monitoring.helpers import Api, eventually, wait_final, wait_state


def _concurrency(api: Api, host: str) -> int:
    workers = api.get("/api/monitor/workers")["workers"]
    return next(w["info"]["concurrency"] for w in workers if w["hostname"] == host)


def test_pool_grow_then_shrink_changes_concurrency(
    api: Api, online_plain_worker: PlainWorker
) -> None:
    # given the plain worker's pool size
    host = online_plain_worker.hostname
    start = _concurrency(api, host)
    # when an admin grows its pool by one
    body = api.post(f"/api/worker/pool/grow/{host}", params={"n": 1})
    assert body == {"message": f"Growing '{host}' worker's pool by 1"}
    # then the next heartbeats report one more process
    eventually(lambda: _concurrency(api, host), lambda n: n == start + 1, timeout=10)
    # and when it shrinks it by one, the size is back
    body = api.post(f"/api/worker/pool/shrink/{host}", params={"n": 1})
    assert body == {"message": f"Shrinking '{host}' worker's pool by 1"}
    eventually(lambda: _concurrency(api, host), lambda n: n == start, timeout=10)


def test_controls_need_the_admin_token(api: Api, online_plain_worker: PlainWorker) -> None:
    host = online_plain_worker.hostname
    # given no token, then 401; a wrong one, 401; and nothing changed
    r = api.request("POST", f"/api/worker/pool/grow/{host}", admin=False)
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    r = api.request(
        "POST", f"/api/worker/pool/grow/{host}", admin=False, headers={"Authorization": "Bearer x"}
    )
    assert r.status_code == 401
    r = api.request("POST", "/api/task/revoke/some-id", admin=False)
    assert r.status_code == 401


def test_revoke_terminates_a_running_task(api: Api, online_plain_worker: PlainWorker) -> None:
    # given a long task that has started
    result = plain_app.nap.delay(60)
    wait_state(api, result.id, "STARTED")
    # when an admin revokes it with terminate
    body = api.post(f"/api/task/revoke/{result.id}", params={"terminate": "true"})
    assert body == {"message": f"Revoked '{result.id}'"}
    # then it ends REVOKED well before its minute is up
    task = wait_final(api, result.id, timeout=15)
    assert task["state"] == "REVOKED"
    assert task["revoked"] is not None


def test_retry_reruns_a_failed_task_with_the_same_arguments(
    api: Api, online_plain_worker: PlainWorker
) -> None:
    # given a task that failed (it fails on its first run only)
    key = uuid.uuid4().hex
    failed = plain_app.flaky.delay(key)
    assert wait_final(api, failed.id)["state"] == "FAILURE"
    detail = api.get(f"/api/monitor/tasks/{failed.id}")
    assert detail["retryable"] is True
    # when an admin retries it
    body = api.post(f"/api/monitor/tasks/{failed.id}/retry", expect=202)
    new_id = body["task-id"]
    assert new_id != failed.id and body["retry_of"] == failed.id
    # then the same task runs again with the same arguments, and succeeds this time
    task = wait_final(api, new_id)
    assert task["state"] == "SUCCESS"
    assert task["name"] == "plain.flaky"
    assert task["args"] == detail["args"] == f"('{key}',)"
    assert task["result"] == repr(f"{key} ok on run 2")
    # and a task that succeeded cannot be retried
    r = api.request("POST", f"/api/monitor/tasks/{new_id}/retry")
    assert r.status_code == 409
