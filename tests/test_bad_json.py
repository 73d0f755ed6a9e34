"""JSON bodies and frames: strict numbers, bounded nesting and size, storable text.

Python's `json` takes NaN and Infinity, overflows `1e999` to infinity,
recurses once per nesting level (100,000 `[` was a 500), and keeps lone
surrogates (`"\\ud800"`), which no UTF-8 store takes. A chunked body has no
Content-Length, so only reading it tells its size. Each now gets the
contract's 4xx (or an error frame on /ws), stores nothing, and the server
goes on serving.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.support import WebService, WorkerService, http
from tests.support.ws import WsClient, is_final, watch_to_end

MAX_BODY = 1_048_576  # AGENTDECK_MAX_BODY_BYTES's default, which the test platform keeps
HEADERS = {"Content-Type": "application/json"}


def job_count(web_url: str) -> int:
    counts = http.get(f"{web_url}/api/jobs", params={"limit": 1}).json()["counts"]
    return sum(counts.values())


def nested(depth: int) -> str:
    """A submission whose JSON nests `depth` levels in all (the body itself is one)."""
    inner = "[" * (depth - 2) + "]" * (depth - 2)
    return '{"agent": "echo", "input": {"text": "x", "extra": ' + inner + "}}"


def submit_raw(web_url: str, body: str | bytes) -> tuple[int, dict]:
    r = http.post(f"{web_url}/api/jobs", data=body, headers=HEADERS, timeout=30)
    return r.status_code, r.json()


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ('{"agent": "echo", "input": {"text": "x", "delay": NaN}}', 400, "NaN"),
        ('{"agent": "echo", "input": {"text": "x", "delay": Infinity}}', 400, "Infinity"),
        ('{"agent": "echo", "input": {"text": "x", "delay": -Infinity}}', 400, "Infinity"),
        ('{"agent": "echo", "input": {"text": "x", "delay": 1e999}}', 400, "too large"),
        ("[" * 100_000, 400, "too deeply nested"),
        (nested(65), 400, "too deeply nested"),
        (nested(64), 422, ""),  # parsed: the schema refuses the extra field
        ('{"agent": "echo", "input": {"text": "a\\ud800b"}}', 422, "input.text"),
        ('{"agent": "echo", "input": {"te\\udc00xt": "a"}}', 422, "input.te"),
    ],
    ids=["nan", "inf", "-inf", "1e999", "100000-deep", "65-deep", "64-deep", "surrogate", "key"],
)
def test_bodies_json_cannot_carry_are_refused_and_store_nothing(
    web: WebService, body: str, status: int, words: str
) -> None:
    # given the number of jobs stored
    before = job_count(web.url)
    # when such a body is submitted
    code, answer = submit_raw(web.url, body)
    # then it gets the contract's error, saying why, and nothing is stored
    assert code == status, answer
    error = answer["error"]
    assert error["code"] == ("bad_json" if status == 400 else "invalid_input")
    assert words in error["message"]
    if words.startswith("input."):
        assert error["field"].startswith(words)
    assert job_count(web.url) == before
    assert http.get(f"{web.url}/healthz").status_code == 200


def chunks(total: int, piece: int = 65_536) -> Iterator[bytes]:
    """A JSON body of `total` bytes, as a generator: requests sends it chunked. Its
    agent does not exist, so a body read whole is a 404 and nothing runs."""
    head = b'{"agent": "no-such-agent", "input": {"text": "'
    tail = b'"}}'
    yield head
    left = total - len(head) - len(tail)
    while left > 0:
        n = min(piece, left)
        yield b"x" * n
        left -= n
    yield tail


def test_a_chunked_body_over_the_limit_is_413_and_stores_nothing(web: WebService) -> None:
    # given the number of jobs stored
    before = job_count(web.url)
    # when a body of twice the limit comes chunked (no Content-Length)
    r = http.post(f"{web.url}/api/jobs", data=chunks(2 * MAX_BODY), headers=HEADERS, timeout=30)
    # then it is 413, not a 400 for a body cut at the limit, and nothing is stored
    assert r.status_code == 413, r.text
    assert r.json()["error"]["code"] == "too_large"
    assert job_count(web.url) == before


def test_a_chunked_body_of_exactly_the_limit_is_read_whole(web: WebService) -> None:
    # when a body of exactly the limit comes chunked
    r = http.post(f"{web.url}/api/jobs", data=chunks(MAX_BODY), headers=HEADERS, timeout=30)
    # then it is read to its end and parsed: the agent it names is looked up
    assert r.status_code == 404, r.text[:300]
    assert r.json()["error"]["code"] == "unknown_agent"


def test_a_chunked_body_under_the_limit_is_accepted(web: WebService, worker: WorkerService) -> None:
    # when a small body comes chunked
    body = json.dumps({"agent": "echo", "input": {"text": "chunked", "steps": 1}}).encode()
    r = http.post(f"{web.url}/api/jobs", data=iter([body[:10], body[10:]]), headers=HEADERS)
    # then the job is accepted and runs
    assert r.status_code == 202, r.text
    assert watch_to_end(web.url, r.json()["id"])[-1]["data"]["result"] == "chunked"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/jobs/no-such-job/input", '{"answer": NaN}'),
        ("/api/jobs/no-such-job/input", "[" * 100_000),
        ("/api/task/async-apply/agentdeck.run_agent", '{"args": [Infinity]}'),
        ("/api/task/async-apply/agentdeck.run_agent", '{"countdown": 1e999}'),
        ("/api/task/send-task/agentdeck.run_agent", '{"args": ' + "[" * 50_000),
    ],
)
def test_every_json_body_is_parsed_strictly(web: WebService, path: str, body: str) -> None:
    # when another endpoint that reads JSON gets what JSON cannot carry
    r = http.post(web.url + path, data=body, headers=HEADERS)
    # then it is the same 400 (before looking the job or task up)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "bad_json"


def test_an_answer_with_a_lone_surrogate_is_refused_and_the_job_still_waits(
    web: WebService, worker: WorkerService
) -> None:
    # given a job waiting for a person's answer
    r = http.post(f"{web.url}/api/jobs", json={"agent": "ask", "input": {"question": "name?"}})
    job_id = r.json()["id"]
    ws = WsClient(web.url)
    try:
        ws.subscribe_job(job_id)
        ws.events_until(job_id, lambda e: e["type"] == "input.requested")
        # when the answer holds a lone surrogate
        bad = http.post(
            f"{web.url}/api/jobs/{job_id}/input",
            data='{"answer": "Ann\\ud800"}',
            headers=HEADERS,
        )
        # then it is refused naming the field, and the job still waits for an answer
        assert bad.status_code == 422, bad.text
        assert bad.json()["error"]["field"] == "answer"
        assert http.get(f"{web.url}/api/jobs/{job_id}").json()["state"] == "WAITING"
        # and a good answer still ends it
        ok = http.post(f"{web.url}/api/jobs/{job_id}/input", json={"answer": "Ann"})
        assert ok.status_code == 202, ok.text
        last = ws.events_until(job_id, is_final)[-1]
        assert last["data"]["result"] == "Ann"
    finally:
        ws.close()


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ('{"op": "ping", "x": NaN}', "bad_json"),
        ('{"op": "ping", "x": -Infinity}', "bad_json"),
        ('{"op": "subscribe", "topic": "job:abc", "since": 1e999}', "bad_json"),
        ('{"op": "ping", "x": ' + "[" * 5_000 + "]" * 5_000 + "}", "bad_json"),
        ("[" * 16_000, "bad_json"),
        ('{"op": "auth", "token": "t\\ud800"}', "bad_frame"),
    ],
    ids=["nan", "-inf", "1e999", "5000-deep", "16000-open", "surrogate"],
)
def test_frames_json_cannot_carry_get_an_error_and_the_socket_stays_open(
    web: WebService, frame: str, code: str
) -> None:
    # given a connected client
    ws = WsClient(web.url)
    try:
        # when it sends such a frame
        ws.send(frame)
        error = ws.wait_for(lambda f: f["type"] == "error")
        # then it gets an error frame, and the connection still answers
        assert error["code"] == code and error["message"]
        ws.send({"op": "ping"})
        assert ws.wait_for(lambda f: True)["type"] == "pong"
    finally:
        ws.close()
    assert http.get(f"{web.url}/healthz").status_code == 200
