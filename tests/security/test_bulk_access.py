"""A bulk submission is checked like single ones: role, ownership, idempotency per owner."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.security.conftest import Identities
from tests.support import http

ECHO: dict[str, Any] = {"agent": "echo", "input": {"text": "mine", "steps": 0, "delay": 0}}


def bulk(base: str, token: str, jobs: list[Any]) -> Any:
    return http.post(f"{base}/api/jobs/bulk", json={"jobs": jobs}, token=token)


def job_count(base: str) -> int:
    counts = http.get(f"{base}/api/jobs", params={"limit": 1}).json()["counts"]
    return sum(counts.values())


@pytest.mark.parametrize(
    ("who", "status"),
    [("anonymous", 401), ("wrong", 401), ("revoked", 401), ("expired", 401), ("viewer", 403)],
)
def test_who_may_not_submit_may_not_submit_in_bulk(
    web_url: str, identities: Identities, who: str, status: int
) -> None:
    # given the jobs stored so far
    before = job_count(web_url)
    # when someone without the operator role sends a bulk
    r = bulk(web_url, identities[who], [ECHO, ECHO])
    # then it is refused whole and nothing is stored
    assert r.status_code == status, r.text
    assert job_count(web_url) == before


def test_each_job_of_a_bulk_is_its_senders_and_keys_are_scoped_by_owner(
    web_url: str, identities: Identities
) -> None:
    # given a job another operator made with an idempotency key
    key = f"shared-{uuid.uuid4().hex}"
    theirs = bulk(web_url, identities["other"], [{**ECHO, "idempotency_key": key}])
    [their_job] = theirs.json()["results"]
    assert their_job["status"] == 202, theirs.text
    # when an operator sends a bulk holding the same key and a plain job
    r = bulk(web_url, identities["owner"], [{**ECHO, "idempotency_key": key}, ECHO])
    # then both are new jobs of the sender's own, not the other's job
    assert r.status_code == 200, r.text
    mine = r.json()["results"]
    assert [x["status"] for x in mine] == [202, 202]
    assert their_job["id"] not in {x["id"] for x in mine}
    for made in mine:
        job = http.get(f"{web_url}/api/jobs/{made['id']}", token=identities["owner"]).json()
        assert job["owner_id"] == identities.user_ids["owner"]
        # and the other operator cannot see them
        seen = http.get(f"{web_url}/api/jobs/{made['id']}", token=identities["other"])
        assert seen.status_code == 404


def test_a_bulk_with_the_session_cookie_needs_the_csrf_header(
    web_url: str, identities: Identities
) -> None:
    # given a browser session of an operator (logged in with a token)
    s = http.session(token="")
    login = s.post(f"{web_url}/api/session", json={"token": identities["owner"]})
    assert login.status_code in (200, 201), login.text
    before = job_count(web_url)
    # when the page sends a bulk without X-CSRF-Token, or from another site
    no_csrf = s.post(f"{web_url}/api/jobs/bulk", json={"jobs": [ECHO]})
    foreign = s.post(
        f"{web_url}/api/jobs/bulk",
        json={"jobs": [ECHO]},
        headers={"Origin": "https://evil.example"},
    )
    # then both are refused and nothing is stored
    assert no_csrf.status_code == 403 and no_csrf.json()["error"]["code"] == "csrf"
    assert foreign.status_code == 403 and foreign.json()["error"]["code"] == "bad_origin"
    assert job_count(web_url) == before
