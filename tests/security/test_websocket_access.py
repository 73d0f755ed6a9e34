"""The WebSocket: authenticated at the handshake or by its first frame, every subscribe
authorized, foreign pages refused, revoked credentials cut off."""

from __future__ import annotations

import time
from typing import Any

import pytest
import websocket

from tests.security.conftest import Identities
from tests.support import WorkerService, http
from tests.support.ws import WsClient, is_final

ECHO = {"agent": "echo", "input": {"text": "private words", "steps": 1, "delay": 0}}


def _closed_code(ws: WsClient, timeout: float = 15.0) -> str:
    """Read until the server closes; the close message names the code."""
    deadline = time.monotonic() + timeout
    with pytest.raises(websocket.WebSocketConnectionClosedException) as closed:
        while time.monotonic() < deadline:
            ws.recv(timeout=deadline - time.monotonic())
    return str(closed.value)


def _submit(base: str, token: str) -> str:
    r = http.post(f"{base}/api/jobs", json=ECHO, token=token)
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


def _error(ws: WsClient) -> dict[str, Any]:
    return ws.wait_for(lambda f: f["type"] == "error")


def test_an_anonymous_socket_may_only_authenticate(web_url: str) -> None:
    # given a socket with no credentials, when it subscribes
    ws = WsClient(web_url, token="")
    ws.send({"op": "subscribe", "topic": "jobs"})
    # then it is told to authenticate and cut off
    assert _error(ws)["code"] == "unauthorized"
    assert "4401" in _closed_code(ws)


def test_the_auth_op_checks_the_token(web_url: str, identities: Identities) -> None:
    # a wrong token: refused and closed (it used to say "authenticated" to any string)
    ws = WsClient(web_url, token="")
    ws.send({"op": "auth", "token": "adk_not-a-token"})
    assert _error(ws)["code"] == "unauthorized"
    assert "4401" in _closed_code(ws)
    # a right one: the socket acts as its user
    ws = WsClient(web_url, token="")
    try:
        ws.send({"op": "auth", "token": identities["owner"]})
        reply = ws.wait_for(lambda f: f["type"] == "authenticated")
        assert reply["role"] == "operator"
        ws.send({"op": "subscribe", "topic": "jobs"})
        assert ws.wait_for(lambda f: f["type"] == "subscribed")["topic"] == "jobs"
    finally:
        ws.close()


def test_another_users_job_cannot_be_subscribed_and_looks_missing(
    web_url: str, identities: Identities, module_worker: WorkerService
) -> None:
    # given the owner's job
    job = _submit(web_url, identities["owner"])
    ws = WsClient(web_url, token=identities["other"])
    try:
        # when another operator subscribes to it and to a job that does not exist
        ws.send({"op": "subscribe", "topic": f"job:{job}", "since": 0})
        theirs = _error(ws)
        ws.send({"op": "subscribe", "topic": "job:no-such-job", "since": 0})
        missing = _error(ws)
        # then both answers are the same, and no event of the owner's job arrives
        assert theirs["code"] == missing["code"] == "not_found"
        ws.send({"op": "ping"})
        assert ws.wait_for(lambda f: f["type"] in ("pong", "events"))["type"] == "pong"
    finally:
        ws.close()
    # while the owner follows it to the end
    owner = WsClient(web_url, token=identities["owner"])
    try:
        owner.subscribe_job(job)
        assert is_final(owner.events_until(job, is_final)[-1])
    finally:
        owner.close()


@pytest.mark.parametrize("topic", ["jobs", "jobs:latest"])
def test_the_jobs_topic_carries_only_the_users_own_jobs(
    topic: str, web_url: str, identities: Identities, module_worker: WorkerService
) -> None:
    # given the other operator and an admin on the jobs topic (or its coalesced form)
    other = WsClient(web_url, token=identities["other"])
    admin = WsClient(web_url)
    try:
        for ws in (other, admin):
            ws.send({"op": "subscribe", "topic": topic})
            ws.wait_for(lambda f: f["type"] == "subscribed")
        # when the owner and then the other operator run a job each
        owners_job = _submit(web_url, identities["owner"])
        others_job = _submit(web_url, identities["other"])
        # then the admin sees both end, and the other operator sees only its own
        seen_by_admin = _jobs_until_final(admin, topic, {owners_job, others_job})
        seen_by_other = _jobs_until_final(other, topic, {others_job})
        assert {owners_job, others_job} <= seen_by_admin
        assert owners_job not in seen_by_other
    finally:
        other.close()
        admin.close()


def _jobs_until_final(ws: WsClient, topic: str, wanted: set[str], timeout: float = 30) -> set[str]:
    """The jobs `ws` heard of on `topic` until each of `wanted` was seen final."""
    seen: set[str] = set()
    finished: set[str] = set()
    deadline = time.monotonic() + timeout
    while not wanted <= finished:
        frame = ws.recv(timeout=max(deadline - time.monotonic(), 0.01))
        if frame.get("topic") != topic:
            continue
        # `jobs`: envelopes (`job`); `jobs:latest`: one entry per job (`id`)
        for item in frame.get("events", []) + frame.get("jobs", []):
            seen.add(item.get("job") or item["id"])
            if is_final(item):
                finished.add(item.get("job") or item["id"])
    return seen


def test_worker_presence_is_for_those_who_see_all(web_url: str, identities: Identities) -> None:
    ws = WsClient(web_url, token=identities["owner"])
    try:
        ws.send({"op": "subscribe", "topic": "workers"})
        assert _error(ws)["code"] == "forbidden"
    finally:
        ws.close()


def test_a_socket_from_a_page_of_another_site_is_refused(web_url: str) -> None:
    url = web_url.replace("http://", "ws://") + "/ws"
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        websocket.create_connection(
            url, header=http.auth_headers(), origin="http://evil.test:8000", timeout=10
        )
    assert refused.value.status_code == 403


def test_revoking_a_token_closes_its_sockets_within_seconds(
    web_url: str, identities: Identities
) -> None:
    # given a socket authenticated with a fresh token of the owner
    made = http.post(
        f"{web_url}/api/tokens", json={"name": "short-lived"}, token=identities["owner"]
    ).json()
    ws = WsClient(web_url, token="")
    ws.send({"op": "auth", "token": made["token"]})
    ws.wait_for(lambda f: f["type"] == "authenticated")
    # when the owner revokes the token
    revoked_at = time.monotonic()
    r = http.delete(f"{web_url}/api/tokens/{made['id']}", token=identities["owner"])
    assert r.status_code == 200
    # then the socket is closed within seconds
    assert "4401" in _closed_code(ws, timeout=10)
    assert time.monotonic() - revoked_at < 10


def test_disabling_a_user_closes_their_sockets(web_url: str) -> None:
    # given a new user with a socket open
    user = http.post(
        f"{web_url}/api/users", json={"name": f"leaver-{time.time_ns()}", "role": "operator"}
    ).json()
    token = http.post(f"{web_url}/api/tokens", json={"user_id": user["id"], "name": "t"}).json()
    ws = WsClient(web_url, token=token["token"])
    ws.send({"op": "ping"})
    ws.wait_for(lambda f: f["type"] == "pong")
    # when an admin disables the user
    r = http.request("PATCH", f"{web_url}/api/users/{user['id']}", json={"disabled": True})
    assert r.status_code == 200
    # then the socket closes, and the token no longer opens anything
    assert "4401" in _closed_code(ws, timeout=10)
    assert http.get(f"{web_url}/api/me", token=token["token"]).status_code == 401


def test_a_socket_that_never_authenticates_is_closed(web_url: str) -> None:
    ws = WsClient(web_url, token="")
    ws.send({"op": "ping"})  # allowed, but it is not logging in
    ws.wait_for(lambda f: f["type"] == "pong")
    assert "4401" in _closed_code(ws, timeout=20)
