"""Flower's REST API at Flower's paths, answering in the shapes of Flower's documented examples."""

from __future__ import annotations

import uuid

from tests.monitoring import plain_app
from tests.monitoring.conftest import PlainWorker
from tests.monitoring.helpers import Api, wait_final

# Field names from the example responses in Flower's API documentation.
FLOWER_TASK_FIELDS = {
    "args", "client", "clock", "eta", "exception", "exchange", "expires", "failed", "kwargs",
    "name", "received", "result", "retried", "retries", "revoked", "routing_key", "runtime",
    "sent", "started", "state", "succeeded", "timestamp", "traceback", "uuid", "worker",
}  # fmt: skip
FLOWER_INFO_FIELDS = FLOWER_TASK_FIELDS  # Flower 2.2: Task.as_dict(), `uuid` included
FLOWER_WORKER_FIELDS = {"active_queues", "conf", "registered", "stats", "timestamp"}


def test_task_endpoints_answer_in_flowers_shape(api: Api, online_plain_worker: PlainWorker) -> None:
    done = plain_app.add.delay(20, 22)
    assert wait_final(api, done.id)["state"] == "SUCCESS"

    listed = api.get("/api/tasks", params={"limit": 5, "taskname": "plain.add"})
    assert done.id in listed
    assert set(listed[done.id]) >= FLOWER_TASK_FIELDS

    info = api.get(f"/api/task/info/{done.id}")
    assert set(info) >= FLOWER_INFO_FIELDS and info["uuid"] == done.id
    assert "task-id" not in info
    assert info["worker"] == online_plain_worker.hostname and info["result"] == "42"

    result = api.get(f"/api/task/result/{done.id}")
    assert result == {"task-id": done.id, "state": "SUCCESS", "result": 42}

    types = api.get("/api/task/types")
    assert set(types) == {"task-types"} and "plain.add" in types["task-types"]

    queues = api.get("/api/queues/length")
    assert set(queues) == {"active_queues"}
    assert {"name": "plain", "messages": 0} in queues["active_queues"]

    assert api.request("GET", "/api/task/info/no-such-task").status_code == 404


def test_a_task_revoked_before_any_worker_received_it_is_listed_under_the_revoking_worker(
    api: Api, online_plain_worker: PlainWorker
) -> None:
    host = online_plain_worker.hostname
    # given a task id the worker has been told to revoke before it was sent
    task_id = str(uuid.uuid4())
    reply = plain_app.app.control.revoke(task_id, destination=[host], reply=True, timeout=5)
    assert reply, "the worker did not confirm the revoke"

    # when the task is sent to that worker's queue (Celery says no task_received for it)
    plain_app.add.apply_async((1, 1), task_id=task_id, queue=online_plain_worker.queue)

    # then it ends REVOKED with that worker as its worker, as Flower lists it
    info = wait_final(api, task_id)
    assert info["state"] == "REVOKED" and info["worker"] == host
    assert info["received"] is None and info["started"] is None
    listed = api.get("/api/tasks", params={"workername": host, "state": "REVOKED"})
    assert task_id in listed and listed[task_id]["worker"] == host


def test_apply_and_send_run_registered_tasks_only(
    api: Api, online_plain_worker: PlainWorker
) -> None:
    body = api.post("/api/task/async-apply/plain.add", json={"args": [1, 2]})
    assert set(body) == {"task-id", "state"}
    assert wait_final(api, body["task-id"])["result"] == "3"

    body = api.post("/api/task/send-task/plain.add", json={"args": [3, 4]})
    assert set(body) == {"task-id", "state"}
    assert wait_final(api, body["task-id"])["result"] == "7"

    body = api.post("/api/task/apply/plain.add", json={"args": [5, 6]})
    assert body["state"] == "SUCCESS" and body["result"] == 11 and "task-id" in body

    for path in ("apply", "async-apply", "send-task"):
        r = api.request("POST", f"/api/task/{path}/os.system", json={"args": ["id"]})
        assert r.status_code == 404, path
    r = api.request("POST", "/api/task/async-apply/plain.add", json={"args": 3})
    assert r.status_code == 400


def test_worker_endpoints_answer_in_flowers_shape(
    api: Api, online_plain_worker: PlainWorker
) -> None:
    host = online_plain_worker.hostname
    workers = api.get("/api/workers", params={"workername": host})
    assert set(workers) == {host}
    assert set(workers[host]) >= FLOWER_WORKER_FIELDS
    assert "plain.add" in workers[host]["registered"]
    assert workers[host]["stats"]["pool"]["max-concurrency"] >= 1
    assert [q["name"] for q in workers[host]["active_queues"]] == ["plain"]

    status = api.get("/api/workers", params={"status": "true"})
    assert status[host] is True

    msg = api.post(f"/api/worker/queue/add-consumer/{host}", params={"queue": "plain-extra"})
    assert msg == {"message": "add consumer plain-extra"}
    msg = api.post(f"/api/worker/queue/cancel-consumer/{host}", params={"queue": "plain-extra"})
    assert msg == {"message": "no longer consuming from plain-extra"}

    msg = api.post(
        "/api/task/rate-limit/plain.add", data={"ratelimit": "1000/s", "workername": host}
    )
    assert msg == {"message": "new rate limit set successfully"}
    msg = api.post(
        "/api/task/timeout/plain.add", data={"soft": "30", "hard": "60", "workername": host}
    )
    assert msg == {"message": "time limits set successfully"}

    r = api.request("POST", f"/api/worker/pool/autoscale/{host}?min=1&max=2")
    assert r.status_code == 403  # autoscaling is not enabled on this worker: Flower says 403
    r = api.request("POST", "/api/worker/pool/grow/nobody@nowhere")
    assert r.status_code == 404
    r = api.request("GET", "/api/workers", params={"workername": "nobody@nowhere"})
    assert r.status_code == 404

    msg = api.post("/api/task/abort/some-task-id")
    assert msg == {"message": "Aborted 'some-task-id'"}
