"""`jobs:latest` on its own: the fold of a tick's events into entries, and who gets what."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from webapp.auth.roles import Principal, Role, Via
from webapp.coalesce import JOBS_LATEST_TOPIC, Coalescer, fold_entries, kept


def envelope(job: str, seq: int, type_: str, state: str, ts: float, **data: Any) -> str:
    return json.dumps(
        {"job": job, "seq": seq, "type": type_, "ts": ts, "state": state, "data": data}
    )


class Sink:
    def __init__(self, principal: Principal | None) -> None:
        self.principal = principal
        self.frames: list[dict[str, Any]] = []

    def put_bytes(self, data: bytes) -> bool:
        self.frames.append(json.loads(payload(data)))
        return True


def payload(frame: bytes) -> bytes:
    """A server frame's payload (unmasked: its header is 2, 4 or 10 bytes)."""
    n = frame[1] & 0x7F
    return frame[{126: 4, 127: 10}.get(n, 2) :]


def principal(user: str, role: Role = Role.OPERATOR) -> Principal:
    return Principal(user_id=user, name=user, role=role, via=Via.TOKEN)


def test_a_jobs_life_in_one_tick_is_one_entry_with_its_final_state() -> None:
    # given a plain task's whole life arriving in one tick, out of seq order
    raws = [
        envelope("a", 3, "job.succeeded", "SUCCESS", 12.0, result=3),
        envelope("a", 1, "job.queued", "PENDING", 10.0, name="plain.add", parent_id="p"),
        envelope("a", 2, "job.started", "STARTED", 11.0, worker="w1", received_at=10.5),
    ]
    # when it is folded
    entries = fold_entries((json.loads(r)["seq"], r) for r in raws)
    # then one entry holds the latest state and what the list shows
    assert entries == {
        "a": {
            "id": "a",
            "queued": True,
            "name": "plain.add",
            "parent_id": "p",
            "created_at": 10.0,
            "started_at": 11.0,
            "worker": "w1",
            "finished_at": 12.0,
            "state": "SUCCESS",
            "seq": 3,
            "updated_at": 12.0,
        }
    }


def test_an_entry_is_a_patch_of_what_changed_since_the_last_tick() -> None:
    # given a running agent job's progress events (and its output, which is not kept)
    raws = [
        envelope("b", 7, "progress", "STARTED", 20.0, done=1, total=4),
        envelope("b", 8, "output", "STARTED", 20.1, text="hi"),
        envelope("b", 9, "progress", "STARTED", 20.2, done=2, total=4),
    ]
    # when the kept ones are folded
    entries = fold_entries((json.loads(r)["seq"], r) for r in raws if kept(json.loads(r)["type"]))
    # then the entry says only the state, the last progress and the last seq kept
    assert entries["b"] == {
        "id": "b",
        "progress": {"done": 2, "total": 4},
        "state": "STARTED",
        "seq": 9,
        "updated_at": 20.2,
    }
    assert not kept("output") and not kept("log") and kept("input.requested")


def test_one_frame_per_tick_is_shared_and_restricted_users_get_only_their_own() -> None:
    # given an admin, two operators and one more admin on the topic
    owners = {"mine": "u1", "theirs": "u2", "plain": None}
    asked: list[list[str]] = []

    def owners_of(jobs: Iterable[str]) -> dict[str, str | None]:
        wanted = list(jobs)
        asked.append(wanted)
        return {j: owners[j] for j in wanted}

    admin, admin2 = Sink(principal("a", Role.ADMIN)), Sink(principal("b", Role.ADMIN))
    u1, u3 = Sink(principal("u1")), Sink(principal("u3"))
    clients = [admin, u1, u3, admin2]
    coalescer = Coalescer(lambda: clients, owners_of)
    # when a tick's events of three jobs are sent
    for job, seq in (("mine", 1), ("theirs", 1), ("plain", 1), ("mine", 2)):
        coalescer.offer(seq, "job.queued", envelope(job, seq, "job.queued", "PENDING", 1.0))
    coalescer.offer(3, "output", envelope("mine", 3, "output", "PENDING", 1.0, text="x"))
    coalescer.tick()
    # then each admin gets one frame with the three jobs, u1 its own, u3 nothing
    assert [f["topic"] for f in admin.frames] == [JOBS_LATEST_TOPIC]
    assert admin.frames == admin2.frames
    assert {e["id"] for e in admin.frames[0]["jobs"]} == {"mine", "theirs", "plain"}
    assert [e["id"] for e in u1.frames[0]["jobs"]] == ["mine"]
    assert u1.frames[0]["jobs"][0]["seq"] == 2
    assert u3.frames == []
    # the owners were asked once for the tick, and two frames were built for four clients
    assert len(asked) == 1 and coalescer.frames == 2
    # and a tick with nothing new sends nothing
    coalescer.tick()
    assert len(admin.frames) == 1
