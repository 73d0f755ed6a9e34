"""Every numeric parameter takes finite numbers in its range; anything else is a 400.

`nan` once hung a request forever (`min(nan, 60)` as a wait), `2**63` and
`1e23` overflowed SQL into 500s, and `until=nan` came back as invalid JSON.
Each parameter, wherever it travels (query, form, JSON body, WebSocket
frame), now answers such values with 400 and a JSON error naming it, sends
and stores nothing, and the server goes on serving.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from tests.support import WebService, WorkerService, http, wait_until
from tests.support.ws import WsClient

TASK = "agentdeck.run_agent"  # registered by the web app itself: controls accept it
APPLY_BODY = {"args": ["echo", {"text": "never sent"}]}

# As a query or form value.
BAD_TEXT = ["nan", "inf", "-inf", "1e999", "1e23", str(2**63), "-1", "abc"]
# As a JSON body value: numbers where JSON has them, text (Flower's clients send
# numbers as strings too) where it has not.
BAD_JSON: list[Any] = ["nan", "inf", "-inf", "1e999", 1e23, 2**63, -1, "abc"]

# (method, path, where, parameter, the other values the request needs)
QUERY_AND_FORM = [
    ("GET", "/api/jobs/no-such-job/events", "query", "since", {}),
    ("GET", "/api/jobs", "query", "limit", {}),
    ("GET", "/api/tasks", "query", "limit", {}),
    ("GET", "/api/tasks", "query", "offset", {}),
    ("GET", "/api/tasks", "query", "received_start", {}),
    ("GET", "/api/tasks", "query", "received_end", {}),
    ("GET", "/api/tasks", "query", "until", {}),
    ("GET", "/api/monitor/tasks", "query", "limit", {}),
    ("GET", "/api/monitor/tasks", "query", "offset", {}),
    ("GET", "/api/monitor/tasks", "query", "until", {}),
    ("GET", "/api/monitor/dashboard", "query", "window", {}),
    ("GET", "/api/task/result/no-such-task", "query", "timeout", {}),
    ("POST", f"/api/task/apply/{TASK}", "query", "timeout", {}),
    ("POST", f"/api/task/timeout/{TASK}", "form", "soft", {}),
    ("POST", f"/api/task/timeout/{TASK}", "form", "hard", {}),
    ("POST", "/api/worker/pool/grow/{host}", "form", "n", {}),
    ("POST", "/api/worker/pool/shrink/{host}", "form", "n", {}),
    ("POST", "/api/worker/pool/autoscale/{host}", "form", "min", {"max": "2"}),
    ("POST", "/api/worker/pool/autoscale/{host}", "form", "max", {"min": "1"}),
]
JSON_OPTIONS = ["countdown", "expires", "priority"]


def known_host(web_url: str, worker: WorkerService) -> str:
    """The session worker's hostname, once the web app knows it (its first heartbeat)."""

    def known() -> bool:
        workers = http.get(f"{web_url}/api/monitor/workers").json()["workers"]
        return any(w["hostname"] == worker.hostname for w in workers)

    assert wait_until(known, timeout=30), "the web app never saw the worker"
    return str(worker.hostname)


def assert_refused_naming(r: requests.Response, name: str) -> None:
    assert r.status_code == 400, (name, r.status_code, r.text)
    error = json.loads(r.text)["error"]  # strict JSON: no NaN in the answer
    assert error["code"] == "bad_request"
    assert error["field"] == name and f'"{name}"' in error["message"], error


def assert_still_serving(web_url: str) -> None:
    assert http.get(f"{web_url}/healthz", timeout=5).status_code == 200
    assert http.get(f"{web_url}/api/jobs", params={"limit": 1}, timeout=5).status_code == 200


@pytest.mark.parametrize("value", BAD_TEXT)
@pytest.mark.parametrize(
    ("method", "path", "where", "name", "others"),
    QUERY_AND_FORM,
    ids=[f"{m} {p} {n}" for m, p, _, n, _ in QUERY_AND_FORM],
)
def test_bad_query_and_form_numbers_are_400_naming_the_parameter(
    web: WebService,
    worker: WorkerService,
    method: str,
    path: str,
    where: str,
    name: str,
    others: dict[str, str],
    value: str,
) -> None:
    # given an endpoint with a numeric parameter (a pool control needs a known worker)
    url = web.url + path.format(host=known_host(web.url, worker) if "{host}" in path else "")
    values = {**others, name: value}
    # when the parameter is not a finite number in its range (a bounded wait: no hang)
    if where == "query":
        body = APPLY_BODY if "/apply/" in path else None
        r = http.request(method, url, params=values, json=body, timeout=10)
    else:
        r = http.request(method, url, data=values, timeout=10)
    # then it is refused with 400 naming the parameter, and the server still serves
    assert_refused_naming(r, name)
    assert_still_serving(web.url)


@pytest.mark.parametrize("value", BAD_JSON)
@pytest.mark.parametrize("name", JSON_OPTIONS)
def test_bad_numbers_in_a_flower_send_body_are_400_naming_the_option(
    web: WebService, name: str, value: str | float
) -> None:
    # when a send-task body carries a bad number as an option
    r = http.post(f"{web.url}/api/task/async-apply/{TASK}", json={**APPLY_BODY, name: value})
    # then it is refused naming the option, and the server still serves
    assert_refused_naming(r, name)
    assert_still_serving(web.url)


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/api/jobs", {"limit": "500"}),  # more than a page: served as a page
        ("/api/monitor/dashboard", {"window": "5"}),  # shorter than a sample: 10 s
        ("/api/monitor/tasks", {"until": "2024-01-31 13:45", "offset": "0"}),
        ("/api/monitor/tasks", {"until": "1764100000.5", "limit": "0"}),
        ("/api/tasks", {"received_start": "0", "limit": "3", "offset": str(2**31 - 1)}),
        ("/api/task/result/no-such-task", {"timeout": "0.05"}),
        ("/api/jobs/no-such-job/events", {"since": str(2**31 - 1)}),
    ],
)
def test_numbers_in_range_are_served(web: WebService, path: str, params: dict[str, str]) -> None:
    # when a parameter is at or past a documented edge, but a number in range
    r = http.get(web.url + path, params=params, timeout=10)
    # then it is served (a job nobody knows is still a 404), as strict JSON
    assert r.status_code in (200, 404), r.text
    json.loads(r.text, parse_constant=lambda c: pytest.fail(f"{c} in the answer"))
    if path == "/api/jobs":
        assert len(r.json()["jobs"]) <= 200


@pytest.mark.parametrize("since", [2**63, 2**31, 1e23, -1, "abc", "5", 1.5, True, None])
def test_bad_since_in_a_subscribe_frame_is_an_error_frame(
    web: WebService, since: float | str | bool | None
) -> None:
    # given a connected client
    ws = WsClient(web.url)
    try:
        # when it subscribes to a job from a `since` that is no seq
        ws.send({"op": "subscribe", "topic": "job:abc", "since": since})
        error = ws.wait_for(lambda f: f["type"] == "error")
        # then it gets bad_since naming the field, and the connection still answers
        assert error["code"] == "bad_since" and '"since"' in error["message"]
        ws.send({"op": "ping"})
        assert ws.wait_for(lambda f: True)["type"] == "pong"
    finally:
        ws.close()
