"""History lives in SQL: events emitted while no web process ran are recorded later."""

from __future__ import annotations

import json
import time
from typing import Any

import redis
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from launcher.net import wait_until
from tests.support import WebService, WorkerService, http
from tests.support.ws import WsClient
from workers.models import EventRow, Job
from workers.replay_log import head_of
from workers.settings import get_settings


def wait_for_final_event(
    redis_client: redis.Redis, job_id: str, timeout: float = 30.0
) -> dict[str, Any]:
    """Listen on the events channel itself: the web process is down meanwhile."""
    pubsub = redis_client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(get_settings().keys.events_channel)
    try:
        # The job may have ended before we subscribed: the live state says so.
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            _, state = head_of(redis_client, get_settings().keys, job_id)
            if state in ("SUCCESS", "FAILURE"):
                return {"state": state}
            msg = pubsub.get_message(timeout=0.5)
            if msg is None:
                continue
            for line in msg["data"].split("\n"):  # a batch's envelopes, one per line
                event = json.loads(line)
                if event["job"] == job_id and event["state"] in ("SUCCESS", "FAILURE"):
                    return event
        raise TimeoutError(f"job {job_id} did not end")
    finally:
        pubsub.close()


def test_events_emitted_while_web_is_down_reach_sql_and_rest(
    web: WebService, worker: WorkerService, redis_client: redis.Redis, sql_engine: Engine
) -> None:
    # given a slow job that has started, watched over the WebSocket
    r = http.post(
        f"{web.url}/api/jobs",
        timeout=10,
        json={"agent": "echo", "input": {"text": "one two three", "steps": 8, "delay": 0.15}},
    )
    job_id = r.json()["id"]
    ws = WsClient(web.url)
    ws.subscribe_job(job_id)
    seen = ws.events_until(job_id, lambda e: e["type"] == "step.started")
    ws.close()
    # when the web process stops while the job runs, and starts again after it ended
    web.stop()
    final = wait_for_final_event(redis_client, job_id)
    assert final["state"] == "SUCCESS"
    web.start()
    # then the full history is in SQL, including what happened while web was down
    head, _ = head_of(redis_client, get_settings().keys, job_id)

    def recorded() -> int:
        with Session(sql_engine) as s:
            row = s.get(Job, job_id)
            return row.last_seq if row is not None else 0

    assert wait_until(lambda: recorded() == head, timeout=20), "the recorder did not catch up"
    with Session(sql_engine) as s:
        rows = s.scalars(
            select(EventRow).where(EventRow.job_id == job_id).order_by(EventRow.seq)
        ).all()
        row = s.get(Job, job_id)
    assert [r.seq for r in rows] == list(range(1, head + 1))
    assert head > seen[-1]["seq"] + 5  # most of the run happened while web was down
    assert rows[-1].type == "job.succeeded"
    assert row is not None and row.state == "SUCCESS" and row.result == "one two three"
    assert row.finished_at is not None and row.worker
    # and REST serves all of it
    rest = http.get(f"{web.url}/api/jobs/{job_id}/events", timeout=10).json()
    assert [e["seq"] for e in rest["events"]] == list(range(1, head + 1))
