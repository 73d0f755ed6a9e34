"""The built-in `approval` agent end to end over REST: draft, a typed question, the
answer acted on (a child job publishes an approved or edited text; a rejection is filed)."""

from __future__ import annotations

from typing import Any

import pytest

from launcher.net import wait_until
from tests.support import WebService, WorkerService, http

POINTS = ["faster resumes", "typed answers"]
DRAFT = "Announcing: release 2.0\n\n- faster resumes\n- typed answers"


def get(url: str) -> dict[str, Any]:
    return dict(http.get(url).json())


def start_and_wait_for_the_question(web: WebService) -> tuple[str, str]:
    """A new approval run, once it has recorded its question (answerable)."""
    r = http.post(
        f"{web.url}/api/jobs",
        json={"agent": "approval", "input": {"topic": "release 2.0", "points": POINTS}},
    )
    assert r.status_code == 202, r.text
    job_id = str(r.json()["id"])
    url = f"{web.url}/api/jobs/{job_id}"
    assert wait_until(lambda: any(s["status"] == "waiting" for s in get(url)["steps"]), 30)
    return job_id, url


def ended(url: str, timeout: float = 30) -> dict[str, Any]:
    assert wait_until(lambda: get(url)["state"] in ("SUCCESS", "FAILURE", "REVOKED"), timeout)
    return get(url)


def test_the_question_carries_its_schema_and_a_wrong_answer_is_refused_at_its_field(
    web: WebService, worker: WorkerService
) -> None:
    # given an approval run waiting for its review
    job_id, url = start_and_wait_for_the_question(web)
    job = get(url)
    assert job["state"] == "WAITING"
    # then the question shows the draft and the answer's JSON Schema
    events = http.get(f"{url}/events").json()["events"]
    (asked,) = [e["data"] for e in events if e["type"] == "input.requested"]
    assert asked["question"] == f"Publish this?\n\n{DRAFT}"
    assert asked["schema"]["properties"]["decision"]["enum"] == ["approve", "edit", "reject"]
    # and the draft was streamed once, from inside its recorded step
    assert [e["data"]["text"] for e in events if e["type"] == "output"] == [DRAFT + "\n"]
    # when answers that do not fit come, each is refused (422) at its field
    cases = [
        ({"decision": "maybe"}, "answer.decision"),
        ({"decision": "edit"}, "answer"),  # an edit without its text
        ({"decision": "approve", "note": "x" * 2001}, "answer.note"),
        ({"decision": "approve", "extra": 1}, "answer"),
    ]
    for wrong, field in cases:
        r = http.post(f"{url}/input", json={"answer": wrong})
        assert r.status_code == 422, (wrong, r.text)
        assert r.json()["error"]["field"] == field, (wrong, r.json())
    # then the run still waits for a good one
    assert get(url)["state"] == "WAITING"
    assert http.post(f"{url}/cancel").status_code == 202
    assert ended(url)["state"] == "REVOKED"


EDITED = "Release 2.0 is out."


@pytest.mark.parametrize(
    ("review", "published"),
    [
        ({"decision": "approve", "note": "ship it"}, f"{DRAFT}\n\n(approved by review: ship it)"),
        ({"decision": "edit", "text": EDITED}, f"{EDITED}\n\n(edited by review)"),
    ],
    ids=["approve", "edit"],
)
def test_an_approved_or_edited_text_is_published_by_a_child_job(
    web: WebService, worker: WorkerService, review: dict[str, Any], published: str
) -> None:
    # given an approval run waiting for its review
    job_id, url = start_and_wait_for_the_question(web)
    # when the reviewer approves (or edits)
    assert http.post(f"{url}/input", json={"answer": review}).status_code == 202
    # then the run resumes, publishes through a child job, and ends with what it published
    final = ended(url)
    assert final["state"] == "SUCCESS", final["error"]
    result = final["result"]
    assert result["status"] == "published" and result["decision"] == review["decision"]
    assert result["text"] == published
    # and the child is an echo job of this run that succeeded with that text
    child = get(f"{web.url}/api/jobs/{result['child']}")
    assert (child["agent"], child["parent_id"], child["state"]) == ("echo", job_id, "SUCCESS")
    assert child["result"] == published
    # and the resumed run replayed the draft: it was not written, nor streamed, again
    events = http.get(f"{url}/events").json()["events"]
    assert [e["data"]["text"] for e in events if e["type"] == "output"] == [DRAFT + "\n"]
    drafts = [e["data"] for e in events if e["type"] == "step.finished"][:2]
    assert [(d["name"], d["replayed"]) for d in drafts] == [("draft", False), ("draft", True)]
    # and every step is recorded once: the draft, the question, the act, the child, the wait
    assert [(s["kind"], s["name"], s["status"]) for s in final["steps"]] == [
        ("run", "draft", "done"),
        ("ask", f"Publish this?\n\n{DRAFT}", "done"),
        ("run", "prepare", "done"),
        ("spawn", "spawn echo", "done"),
        ("wait", "wait", "done"),
    ]


def test_a_rejected_text_is_filed_with_the_note_and_nothing_is_published(
    web: WebService, worker: WorkerService
) -> None:
    # given an approval run waiting for its review
    job_id, url = start_and_wait_for_the_question(web)
    # when the reviewer rejects it with a note
    review = {"decision": "reject", "note": "not before the launch"}
    assert http.post(f"{url}/input", json={"answer": review}).status_code == 202
    # then the run files the rejection and ends
    final = ended(url)
    assert final["state"] == "SUCCESS", final["error"]
    assert final["result"]["status"] == "rejected"
    assert final["result"]["note"] == "not before the launch"
    assert [(s["kind"], s["name"]) for s in final["steps"]] == [
        ("run", "draft"), ("ask", f"Publish this?\n\n{DRAFT}"), ("run", "file the rejection"),
    ]  # fmt: skip
    # and no child job was made
    jobs = http.get(f"{web.url}/api/jobs", params={"agent": "echo", "limit": 200}).json()["jobs"]
    assert not [j for j in jobs if j["parent_id"] == job_id]


@pytest.mark.parametrize(
    ("input", "field"),
    [
        ({"topic": "x" * 201}, "topic"),
        ({"topic": "x", "points": ["p"] * 21}, "points"),
        ({"topic": "x", "points": ["p" * 501]}, "points.0"),
        ({"topic": "x", "timeout": 31 * 86_400}, "timeout"),
        ({"topic": "x", "timeout": 0}, "timeout"),
    ],
    ids=["long-topic", "many-points", "long-point", "long-wait", "no-wait"],
)
def test_its_input_is_bounded(web: WebService, input: dict[str, Any], field: str) -> None:
    # when an approval asks for too much, then it is refused (422) at the field
    r = http.post(f"{web.url}/api/jobs", json={"agent": "approval", "input": input})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == field
