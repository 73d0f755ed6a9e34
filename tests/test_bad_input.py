"""Bad input gets the contract's error, stores nothing, and keeps the socket open."""

from __future__ import annotations

import json

import pytest

from tests.support import WebService, http
from tests.support.ws import WsClient


def job_count(web_url: str) -> int:
    counts = http.get(f"{web_url}/api/jobs", params={"limit": 1}, timeout=10).json()["counts"]
    return sum(counts.values())


@pytest.mark.parametrize(
    ("body", "headers", "status", "code"),
    [
        ("{not json", {"Content-Type": "application/json"}, 400, "bad_json"),
        ("", {"Content-Type": "application/json"}, 400, "bad_json"),
        ("[1, 2]", {"Content-Type": "application/json"}, 400, "bad_request"),
        (json.dumps({"agent": "no-such-agent", "input": {}}), {}, 404, "unknown_agent"),
        (json.dumps({"agent": "echo", "input": {"steps": 2}}), {}, 422, "invalid_input"),
        (
            json.dumps({"agent": "echo", "input": {"text": "x", "steps": "many"}}),
            {},
            422,
            "invalid_input",
        ),
        (
            json.dumps({"agent": "echo", "input": {"text": "x", "bogus": 1}}),
            {},
            422,
            "invalid_input",
        ),
        (json.dumps({"agent": "echo", "input": "text"}), {}, 422, "invalid_input"),
        (
            json.dumps({"agent": "echo", "input": {"text": "x"}, "priority": 99}),
            {},
            422,
            "invalid_input",
        ),
    ],
)
def test_bad_submissions_are_refused_and_store_nothing(
    web: WebService, body: str, headers: dict[str, str], status: int, code: str
) -> None:
    # given the number of jobs stored
    before = job_count(web.url)
    # when a bad submission arrives
    r = http.post(
        f"{web.url}/api/jobs",
        data=body,
        headers={"Content-Type": "application/json", **headers},
        timeout=10,
    )
    # then it gets the contract's error and nothing is stored
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["code"] == code and error["message"]
    assert job_count(web.url) == before


def test_schema_violation_names_the_field(web: WebService) -> None:
    r = http.post(
        f"{web.url}/api/jobs",
        json={"agent": "echo", "input": {"text": "x", "steps": "many"}},
        timeout=10,
    )
    assert r.status_code == 422
    assert r.json()["error"]["field"] == "steps"


def test_oversized_body_is_413_and_stores_nothing(web: WebService) -> None:
    before = job_count(web.url)
    huge = json.dumps({"agent": "echo", "input": {"text": "x" * (2 * 1024 * 1024)}})
    r = http.post(
        f"{web.url}/api/jobs", data=huge, headers={"Content-Type": "application/json"}, timeout=30
    )
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "too_large"
    assert job_count(web.url) == before


def test_unknown_job_is_404(web: WebService) -> None:
    for path in ("/api/jobs/nope", "/api/jobs/nope/events"):
        r = http.get(web.url + path, timeout=10)
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = http.get(f"{web.url}/api/jobs/x/events", params={"since": "abc"}, timeout=10)
    assert r.status_code == 400


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("{oops", "bad_json"),
        ("[1]", "bad_frame"),
        ('{"no": "op"}', "bad_frame"),
        ('{"op": "dance"}', "unknown_op"),
        ('{"op": "subscribe"}', "bad_topic"),
        ('{"op": "subscribe", "topic": "nonsense"}', "bad_topic"),
        ('{"op": "subscribe", "topic": "job:abc", "since": -1}', "bad_since"),
        ('{"op": "subscribe", "topic": "job:abc", "since": "x"}', "bad_since"),
        (json.dumps({"op": "ping", "pad": "x" * 20000}), "frame_too_large"),
    ],
)
def test_malformed_frames_get_an_error_and_the_socket_stays_open(
    web: WebService, frame: str, code: str
) -> None:
    # given a connected client
    ws = WsClient(web.url)
    try:
        # when it sends a malformed frame
        ws.send(frame)
        error = ws.wait_for(lambda f: f["type"] == "error")
        # then it gets the error, and the connection still answers
        assert error["code"] == code and error["message"]
        ws.send({"op": "ping"})
        assert ws.wait_for(lambda f: True)["type"] == "pong"
    finally:
        ws.close()


def test_binary_frame_gets_an_error(web: WebService) -> None:
    ws = WsClient(web.url)
    try:
        ws.conn.send_binary(b"\x00\x01")
        assert ws.wait_for(lambda f: True)["code"] == "bad_frame"
        ws.send({"op": "ping"})
        assert ws.wait_for(lambda f: True)["type"] == "pong"
    finally:
        ws.close()
