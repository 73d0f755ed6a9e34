"""Every REST endpoint against every kind of caller: who gets in, and who sees what.

Callers: anonymous, a wrong token, an expired one, a revoked one, a viewer,
the job's owner (an operator), another operator, an auditor (a viewer who sees
all jobs) and an admin. The job under test belongs to the owner. After each
refused attempt nothing has changed.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from launcher.net import wait_until
from tests.security.conftest import Identities
from tests.support import WorkerService, http

NOBODY = ("anonymous", "wrong", "expired", "revoked")
ALL = (*NOBODY, "viewer", "owner", "other", "auditor", "admin")


def _wait_final(base: str, job_id: str) -> dict[str, Any]:
    final: dict[str, Any] = {}

    def done() -> bool:
        final.update(http.get(f"{base}/api/jobs/{job_id}").json())
        return final["state"] in ("SUCCESS", "FAILURE", "REVOKED")

    assert wait_until(done, timeout=30), final
    return final


@pytest.fixture(scope="module")
def jobs(web_url: str, identities: Identities, module_worker: WorkerService) -> dict[str, str]:
    """The owner's finished echo job and failed job."""
    token = identities["owner"]
    out = {}
    for name, body in (
        ("done", {"agent": "echo", "input": {"text": "private", "steps": 1, "delay": 0}}),
        ("failed", {"agent": "fail", "input": {"message": "secret failure"}}),
    ):
        r = http.post(f"{web_url}/api/jobs", json=body, token=token)
        assert r.status_code == 202, r.text
        out[name] = r.json()["id"]
        _wait_final(web_url, out[name])
    return out


# (method, path, body, {caller: expected status}); paths take {job}; rows cover every route.
READ_JOB = {
    **dict.fromkeys(NOBODY, 401),
    "viewer": 404,
    "owner": 200,
    "other": 404,
    "auditor": 200,
    "admin": 200,
}
ANY_USER = {
    **dict.fromkeys(NOBODY, 401),
    **dict.fromkeys(("viewer", "owner", "other", "auditor", "admin"), 200),
}
MONITORING = {
    **dict.fromkeys(NOBODY, 401),
    "viewer": 403,
    "owner": 403,
    "other": 403,
    "auditor": 200,
    "admin": 200,
}
ADMIN_ONLY = {
    **dict.fromkeys(NOBODY, 401),
    "viewer": 403,
    "owner": 403,
    "other": 403,
    "auditor": 403,
}
CHANGE_JOB = {**dict.fromkeys(NOBODY, 401), "viewer": 404, "other": 404, "auditor": 403}
SUBMIT = {
    **dict.fromkeys(NOBODY, 401),
    "viewer": 403,
    "auditor": 403,
    "owner": 202,
    "other": 202,
    "admin": 202,
}

ROWS: list[tuple[str, str, Any, dict[str, int]]] = [
    ("GET", "/api/me", None, ANY_USER),
    ("GET", "/api/agents", None, ANY_USER),
    ("GET", "/api/jobs", None, ANY_USER),
    ("GET", "/api/tasks", None, ANY_USER),
    ("GET", "/api/tokens", None, ANY_USER),
    ("GET", "/api/jobs/{job}", None, READ_JOB),
    ("GET", "/api/jobs/{job}/events", None, READ_JOB),
    ("GET", "/api/task/info/{job}", None, READ_JOB),
    ("GET", "/api/task/result/{job}", None, READ_JOB),
    (
        "POST",
        "/api/jobs",
        {"agent": "echo", "input": {"text": "x", "steps": 1, "delay": 0}},
        SUBMIT,
    ),
    # A finished job: past the permission check, cancel and answer say 409.
    ("POST", "/api/jobs/{job}/cancel", None, {**CHANGE_JOB, "owner": 409, "admin": 409}),
    (
        "POST",
        "/api/jobs/{job}/input",
        {"answer": "yes"},
        {**CHANGE_JOB, "owner": 409, "admin": 409},
    ),
    ("POST", "/api/jobs/{job}/retry", None, {**CHANGE_JOB, "owner": 202, "admin": 202}),
    ("GET", "/metrics", None, MONITORING),
    ("GET", "/api/workers", None, MONITORING),
    ("GET", "/api/queues/length", None, MONITORING),
    ("GET", "/api/task/types", None, MONITORING),
    ("GET", "/api/monitor/workers", None, MONITORING),
    ("GET", "/api/monitor/broker", None, MONITORING),
    ("GET", "/api/monitor/dashboard", None, MONITORING),
    ("GET", "/api/monitor/tasks", None, MONITORING),
    ("GET", "/api/monitor/tasks/{job}", None, MONITORING),
    ("GET", "/api/users", None, {**ADMIN_ONLY, "admin": 200}),
    # Controls: an admin gets past the check to the command's own answer.
    ("POST", "/api/task/revoke/no-such-task", None, {**ADMIN_ONLY, "admin": 200}),
    ("POST", "/api/task/rate-limit/agentdeck.run_agent", None, {**ADMIN_ONLY, "admin": 400}),
    ("POST", "/api/task/async-apply/no.such.task", None, {**ADMIN_ONLY, "admin": 404}),
    ("POST", "/api/worker/pool/grow/nobody@nowhere", None, {**ADMIN_ONLY, "admin": 404}),
    ("POST", "/api/worker/shutdown/nobody@nowhere", None, {**ADMIN_ONLY, "admin": 404}),
    ("POST", "/api/monitor/tasks/{job}/retry", None, {**ADMIN_ONLY, "admin": 202}),
    ("POST", "/api/users", {"name": "x y"}, {**ADMIN_ONLY, "admin": 422}),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "expected"), ROWS, ids=[f"{m} {p}" for m, p, _, _ in ROWS]
)
@pytest.mark.parametrize("who", ALL)
def test_each_caller_gets_what_its_role_allows(
    web_url: str,
    identities: Identities,
    jobs: dict[str, str],
    method: str,
    path: str,
    body: Any,
    expected: dict[str, int],
    who: str,
) -> None:
    # given a caller and the owner's finished job
    url = web_url + path.format(job=jobs["done"])
    before = _job_count(web_url)
    # when the caller asks
    r = http.request(method, url, json=body, token=identities[who])
    # then it gets what its role allows, and a refusal changed nothing
    assert r.status_code == expected[who], f"{who}: {r.status_code} {r.text[:300]}"
    if r.status_code in (401, 403, 404):
        assert r.headers["Content-Type"].startswith("application/json")
        assert r.json()["error"]["code"]
        assert _job_count(web_url) == before


def _job_count(base: str) -> int:
    counts = http.get(f"{base}/api/jobs", params={"limit": 1}).json()["counts"]
    return sum(counts.values())


def test_another_users_job_is_indistinguishable_from_a_missing_one(
    web_url: str, identities: Identities, jobs: dict[str, str]
) -> None:
    for path in ("/api/jobs/{}", "/api/jobs/{}/events", "/api/task/info/{}"):
        theirs = http.get(web_url + path.format(jobs["done"]), token=identities["other"])
        missing = http.get(web_url + path.format("no-such-job"), token=identities["other"])
        assert theirs.status_code == missing.status_code == 404
        assert theirs.json()["error"]["code"] == missing.json()["error"]["code"]


def test_lists_and_counts_hold_only_the_callers_jobs(
    web_url: str, identities: Identities, jobs: dict[str, str]
) -> None:
    # given the owner's jobs, when another operator lists jobs and tasks
    theirs = http.get(f"{web_url}/api/jobs", params={"limit": 200}, token=identities["other"])
    tasks = http.get(f"{web_url}/api/tasks", token=identities["other"]).json()
    # then none of the owner's jobs is there, and the counts are theirs alone
    ids = {j["id"] for j in theirs.json()["jobs"]}
    assert not ids & set(jobs.values()) and not set(tasks) & set(jobs.values())
    assert sum(theirs.json()["counts"].values()) == len(ids)
    # while the owner and the auditor see them
    mine = http.get(f"{web_url}/api/jobs", params={"limit": 200}, token=identities["owner"])
    assert set(jobs.values()) <= {j["id"] for j in mine.json()["jobs"]}
    audit = http.get(f"{web_url}/api/tasks", token=identities["auditor"]).json()
    assert set(jobs.values()) <= set(audit)


def test_tracebacks_reach_only_the_owner_and_admins(
    web_url: str, identities: Identities, jobs: dict[str, str]
) -> None:
    url = f"{web_url}/api/jobs/{jobs['failed']}"
    assert http.get(url, token=identities["owner"]).json()["traceback"]
    assert http.get(url, token=identities["admin"]).json()["traceback"]
    seen_by_auditor = http.get(url, token=identities["auditor"]).json()
    assert seen_by_auditor["error"] and seen_by_auditor["traceback"] is None


def test_idempotency_keys_are_scoped_by_owner(web_url: str, identities: Identities) -> None:
    body = {
        "agent": "echo",
        "input": {"text": "k", "steps": 1, "delay": 0},
        "idempotency_key": "shared-key",
    }
    first = http.post(f"{web_url}/api/jobs", json=body, token=identities["owner"])
    again = http.post(f"{web_url}/api/jobs", json=body, token=identities["owner"])
    guess = http.post(f"{web_url}/api/jobs", json=body, token=identities["other"])
    assert (first.status_code, again.status_code, guess.status_code) == (202, 200, 202)
    assert again.json()["id"] == first.json()["id"] != guess.json()["id"]
    assert "private" not in guess.text


def test_a_token_ceiling_limits_what_its_admin_owner_can_do(web_url: str) -> None:
    # given an admin's token capped at viewer
    capped = http.post(f"{web_url}/api/tokens", json={"name": "read-only", "role": "viewer"})
    token = capped.json()["token"]
    # then it reads but cannot submit or control, nor log in to more than it is
    assert http.get(f"{web_url}/api/jobs", token=token).status_code == 200
    body = {"agent": "echo", "input": {"text": "x"}}
    assert http.post(f"{web_url}/api/jobs", json=body, token=token).status_code == 403
    assert http.post(f"{web_url}/api/task/revoke/x", token=token).status_code == 403
    login = http.post(f"{web_url}/api/session", json={"token": token}, token="")
    assert login.json()["role"] == "viewer"


def test_a_host_header_for_another_name_is_refused_even_with_a_token(web_url: str) -> None:
    # DNS rebinding: a page at attacker.example whose name now points at this server
    for path in ("/api/monitor/whoami", "/api/jobs", "/"):
        r = http.get(web_url + path, headers={"Host": "attacker.example"})
        assert r.status_code == 400 and r.json()["error"]["code"] == "bad_host"


def test_text_plain_and_form_bodies_are_refused_on_json_endpoints(web_url: str) -> None:
    before = _job_count(web_url)
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data"):
        r = http.post(
            f"{web_url}/api/jobs",
            data='{"agent": "echo", "input": {"text": "x"}}',
            headers={"Content-Type": content_type},
        )
        assert r.status_code == 415, (content_type, r.text)
    assert _job_count(web_url) == before


PUBLIC = {"/healthz", "/readyz", "/login", "/api/session", "/static/<path:filename>", "/ws"}


def test_no_route_answers_an_anonymous_caller(web_url: str) -> None:
    # given every route the app has (so a new one cannot be forgotten)
    from webapp import create_app

    rules = [r for r in create_app(background=False).url_map.iter_rules() if r.rule not in PUBLIC]
    assert len(rules) > 40
    for rule in rules:
        path = rule.rule
        for arg in rule.arguments:
            path = path.replace(f"<{arg}>", "x").replace(f"<path:{arg}>", "x")
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            # when an anonymous caller asks
            r = http.request(method, web_url + path, token="", allow_redirects=False)
            # then it is sent to log in (pages) or refused (everything else)
            if r.status_code == 302:
                assert r.headers["Location"].startswith("/login?next="), (method, path)
            else:
                assert r.status_code == 401, (method, path, r.status_code, r.text[:200])


def test_password_guessing_is_throttled_per_user_name(web_url: str) -> None:
    # given a user with a password
    name = f"guessed-{time.time_ns() % 10**9}"
    body = {"name": name, "role": "viewer", "password": "the real one"}
    assert http.post(f"{web_url}/api/users", json=body).status_code == 201
    # when someone guesses wrong ten times, then the eleventh try is refused
    wrong = {"name": name, "password": "a guess"}
    codes = [
        http.post(f"{web_url}/api/session", json=wrong, token="").status_code for _ in range(11)
    ]
    assert codes == [401] * 10 + [429]
    # even with the right password, for now
    right = {"name": name, "password": "the real one"}
    assert http.post(f"{web_url}/api/session", json=right, token="").status_code == 429
