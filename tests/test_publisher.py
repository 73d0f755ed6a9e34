"""The publish script, against the session's real Redis, one batch at a time.

Each test has a publisher of its own under a key prefix of its own: seqs,
states, the replay log, the recorder's marks, the PUBLISHed messages, a
retried batch and a Redis that lost the job's keys.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from redis.client import PubSub

from tests.support import Platform
from workers.envelope import read_seq
from workers.events import EventType, JobState, next_state
from workers.publisher import _STATE_AFTER, Publisher, _pack, _Pending
from workers.replay_log import head_of, read_log
from workers.settings import Settings


@pytest.fixture
def publisher(platform: Platform, redis_client: redis.Redis) -> Iterator[Publisher]:
    prefix = f"agentdeck-test-pub-{uuid.uuid4().hex[:8]}:"
    pub = Publisher(Settings(redis_url=platform.redis_url, key_prefix=prefix))
    yield pub
    pub.flush(timeout=5)
    keys = list(redis_client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        redis_client.delete(*keys)


@pytest.fixture
def channel(publisher: Publisher, redis_client: redis.Redis) -> Iterator[PubSub]:
    sub = redis_client.pubsub(ignore_subscribe_messages=True)
    sub.subscribe(publisher.keys.events_channel)
    sub.get_message(timeout=1.0)  # the subscribe confirmation
    yield sub
    sub.close()


def item(job: str, type_: str, data: dict[str, Any] | None = None) -> _Pending:
    """One event as emit queues it, to hand the script a batch of our choosing."""
    packed = _pack(job, type_, time.time(), _STATE_AFTER.get(type_, ""), data or {})
    return _Pending(job, packed, type_.startswith("job."))


def received(sub: PubSub, n: int, timeout: float = 5.0) -> list[dict[str, Any]]:
    """The next `n` events on the channel (or fail after `timeout`); a message
    carries a batch's envelopes, one per line."""
    events: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while len(events) < n:
        left = deadline - time.monotonic()
        assert left > 0, f"only {len(events)} of {n} events arrived"
        message = sub.get_message(timeout=left)
        if message is not None:
            events.extend(json.loads(line) for line in message["data"].split("\n"))
    return events


def replay_log(r: redis.Redis, pub: Publisher, job: str) -> list[dict[str, Any]]:
    return [json.loads(str(raw)) for raw in r.lrange(pub.keys.log(job), 0, -1)]


def test_interleaved_jobs_in_one_batch_get_their_own_seqs_states_and_log(
    publisher: Publisher, channel: PubSub, redis_client: redis.Redis
) -> None:
    # Given two jobs whose events are interleaved in one batch
    a, b = f"job-a-{uuid.uuid4()}", f"job-b-{uuid.uuid4()}"
    batch = [
        item(a, "job.queued"),
        item(b, "job.queued"),
        item(a, "job.started"),
        item(a, "output", {"text": "hi \x1e\x1f there"}),
        item(b, "job.started"),
        item(a, "job.succeeded", {"result": 1}),
        item(b, "job.failed", {"error": "boom"}),
    ]
    # When it is published in one call
    seqs = publisher._publish(batch)
    # Then each job's seqs count from 1 in the batch's order
    assert seqs == [1, 1, 2, 3, 2, 4, 3]
    # And the channel carries every event once, each job's in order, with its state
    events = received(channel, len(batch))
    by_job = {job: [e for e in events if e["job"] == job] for job in (a, b)}
    assert [(e["seq"], e["type"], e["state"]) for e in by_job[a]] == [
        (1, "job.queued", "PENDING"),
        (2, "job.started", "STARTED"),
        (3, "output", "STARTED"),
        (4, "job.succeeded", "SUCCESS"),
    ]
    assert [(e["seq"], e["state"]) for e in by_job[b]] == [
        (1, "PENDING"),
        (2, "STARTED"),
        (3, "FAILURE"),
    ]
    assert by_job[a][2]["data"] == {"text": "hi \x1e\x1f there"}
    # And the replay logs hold the same envelopes
    assert replay_log(redis_client, publisher, a) == by_job[a]
    assert replay_log(redis_client, publisher, b) == by_job[b]
    # And each log's head is the job's last seq and final state; the recorder has its marks
    k = publisher.keys
    assert head_of(redis_client, k, a) == (4, "SUCCESS")
    assert head_of(redis_client, k, b) == (3, "FAILURE")
    assert redis_client.zscore(k.dirty, a) == 4.0 and redis_client.zscore(k.dirty, b) == 3.0
    assert 0 < redis_client.ttl(k.log(a)) <= publisher.settings.replay_ttl_seconds
    # And the job keeps no key but its log
    assert sorted(redis_client.scan_iter(match=f"{k.prefix}*{a}")) == [k.log(a)]
    assert int(redis_client.hget(k.metrics, "events_published") or 0) == len(batch)


def test_a_final_state_sticks_and_a_late_received_does_not_undo_started(
    publisher: Publisher, channel: PubSub
) -> None:
    # Given a job that started, then was said received late (the heartbeat), then ended
    job = f"job-{uuid.uuid4()}"
    publisher._publish([item(job, "job.started"), item(job, "job.received")])
    publisher._publish([item(job, "job.succeeded"), item(job, "job.failed")])
    # When the events arrive
    events = received(channel, 4)
    # Then the late received keeps STARTED and the failure after success keeps SUCCESS
    assert [e["state"] for e in events] == ["STARTED", "STARTED", "SUCCESS", "SUCCESS"]


def test_the_script_moves_states_as_the_python_rule_says_for_every_pair(
    publisher: Publisher, redis_client: redis.Redis
) -> None:
    # Given, for every state a job may be in (or none yet) and every state an event
    # may propose ("" keeps it), a job in that state and an event proposing the other
    pairs = [(cur, new) for cur in [None, *JobState] for new in ["", *JobState]]
    jobs = [f"job-{uuid.uuid4()}" for _ in pairs]
    batch = []
    for job, (cur, new) in zip(jobs, pairs, strict=True):
        if cur is not None:
            batch.append(_Pending(job, _pack(job, "log", time.time(), cur, {}), False))
        batch.append(_Pending(job, _pack(job, "log", time.time(), new, {}), False))
    # When the script publishes them in one batch
    publisher._publish(batch)
    # Then each job's state is what `next_state` says
    got = [head_of(redis_client, publisher.keys, job)[1] for job in jobs]
    assert got == [next_state(cur, new) for cur, new in pairs]


def test_a_retried_batch_publishes_only_what_the_first_try_did_not(
    publisher: Publisher, channel: PubSub, redis_client: redis.Redis
) -> None:
    # Given a batch whose call ran in Redis although its caller saw an error,
    # and events emitted since, so the retry's batch is longer
    job = f"job-{uuid.uuid4()}"
    first = [item(job, "job.queued"), item(job, "job.started"), item(job, "step.started")]
    publisher._receipt = "retry-under-test"
    assert publisher._publish(first) == [1, 2, 3]
    # When the retry goes under the same receipt
    publisher._receipt = "retry-under-test"
    seqs = publisher._publish([*first, item(job, "output"), item(job, "job.succeeded")])
    # Then the first events keep their seqs and only the new ones are published
    assert seqs == [1, 2, 3, 4, 5]
    assert [e["seq"] for e in received(channel, 5)] == [1, 2, 3, 4, 5]
    assert channel.get_message(timeout=0.2) is None
    assert [e["seq"] for e in replay_log(redis_client, publisher, job)] == [1, 2, 3, 4, 5]


def test_after_redis_lost_a_job_its_seq_goes_on_from_what_the_publisher_saw(
    publisher: Publisher, channel: PubSub, redis_client: redis.Redis
) -> None:
    # Given a job with three events published
    job = f"job-{uuid.uuid4()}"
    publisher._publish(
        [item(job, "job.queued"), item(job, "job.started"), item(job, "step.started")]
    )
    received(channel, 3)
    # When Redis loses the job's keys and the job goes on
    k = publisher.keys
    redis_client.delete(k.log(job))
    publisher.emit(job, EventType.LOG, {"message": "still here"})
    assert publisher.flush(timeout=5)
    # Then the next event is seq 4, in the state the job was in
    (event,) = received(channel, 1)
    assert (event["seq"], event["state"]) == (4, "STARTED")
    assert head_of(redis_client, k, job) == (4, "STARTED")


def test_emit_refuses_a_job_id_holding_a_separator(publisher: Publisher) -> None:
    # Given job ids that would break the script's framing
    for job in ("bad\x1fjob", "bad\x1ejob"):
        # When an event of it is emitted, Then it is refused, not published
        assert publisher.emit(job, EventType.JOB_QUEUED, wait=True, timeout=1) == 0
    assert publisher.stats.published == 0


def test_a_capped_log_keeps_the_newest_events_and_reads_after_any_seq(
    platform: Platform, redis_client: redis.Redis
) -> None:
    # Given a publisher whose replay logs keep 3 events, and a job with 5
    prefix = f"agentdeck-test-pub-{uuid.uuid4().hex[:8]}:"
    settings = Settings(redis_url=platform.redis_url, key_prefix=prefix, replay_max_events=3)
    pub = Publisher(settings)
    job = f"job-{uuid.uuid4()}"
    try:
        pub._publish([item(job, "job.queued"), item(job, "job.started")])
        pub._publish([item(job, t) for t in ("step.started", "step.finished", "job.succeeded")])
        # When the log is read after various seqs
        reads = {since: read_log(redis_client, settings.keys, job, since) for since in (0, 3, 5)}
        # Then it holds the newest 3, and each read has what is after its seq
        assert {s: (head, [read_seq(e) for e in got]) for s, (head, got) in reads.items()} == {
            0: (5, [3, 4, 5]),
            3: (5, [4, 5]),
            5: (5, []),
        }
    finally:
        k = settings.keys
        redis_client.delete(k.log(job), k.dirty, k.metrics, k.epoch)


def test_a_publisher_whose_connection_was_killed_and_script_flushed_goes_on(
    publisher: Publisher, channel: PubSub, redis_client: redis.Redis
) -> None:
    # Given a publisher that has published, then lost its connection and its script
    job = f"job-{uuid.uuid4()}"
    publisher.emit(job, EventType.JOB_QUEUED, wait=True)
    own_id = publisher._script._run("CLIENT", "ID")
    redis_client.script_flush()
    assert redis_client.client_kill_filter(_id=own_id) == 1
    # When the job goes on
    seq = publisher.emit(job, EventType.JOB_STARTED, wait=True)
    # Then the event is published once, next in seq, after a reconnect and a reload
    assert seq == 2 and publisher.stats.redis_errors == 1
    assert [(e["seq"], e["state"]) for e in received(channel, 2)] == [
        (1, "PENDING"),
        (2, "STARTED"),
    ]
    assert channel.get_message(timeout=0.2) is None


def test_plain_events_are_encoded_by_the_thread_and_bad_data_still_says_the_event(
    publisher: Publisher, channel: PubSub
) -> None:
    # Given a task's plain events, one of them with data that cannot be encoded
    job = f"job-{uuid.uuid4()}"
    looped: dict[str, Any] = {}
    looped["self"] = looped
    publisher.emit_plain(job, "job.started", {"worker": "w@h", "pid": 7}, ts=1.5)
    publisher.emit_plain(job, "job.succeeded", looped)
    # When the thread publishes them
    assert publisher.flush(timeout=5)
    started, succeeded = received(channel, 2)
    # Then both are said, in order, with their states, the bad data replaced
    assert (started["seq"], started["state"], started["ts"]) == (1, "STARTED", 1.5)
    assert started["data"] == {"worker": "w@h", "pid": 7}
    assert (succeeded["seq"], succeeded["state"]) == (2, "SUCCESS")
    assert "Circular reference" in succeeded["data"]["unencodable"]
