"""Accounts for the attack tests: users of each role with tokens, made over the admin API."""

from __future__ import annotations

import time
from dataclasses import dataclass

import pytest

from launcher.net import wait_until
from tests.support import WebService, http


@dataclass(frozen=True)
class Identities:
    """Bearer tokens by who holds them; "" is nobody (anonymous)."""

    tokens: dict[str, str]
    user_ids: dict[str, str]

    def __getitem__(self, who: str) -> str:
        return self.tokens[who]


def _create_user(base: str, name: str, role: str, **extra: object) -> str:
    r = http.post(f"{base}/api/users", json={"name": name, "role": role, **extra})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def _create_token(base: str, user_id: str, name: str, **extra: object) -> str:
    r = http.post(f"{base}/api/tokens", json={"user_id": user_id, "name": name, **extra})
    assert r.status_code == 201, r.text
    return str(r.json()["token"])


@pytest.fixture(scope="module")
def identities(web_url: str) -> Identities:
    """anonymous, wrong, expired, revoked, viewer, owner, other (operators), auditor
    (viewer who sees all jobs), admin; names are unique per module."""
    tag = f"{int(time.time() * 1000) % 10**9}"
    ids = {
        "viewer": _create_user(web_url, f"viewer-{tag}", "viewer"),
        "owner": _create_user(web_url, f"owner-{tag}", "operator"),
        "other": _create_user(web_url, f"other-{tag}", "operator"),
        "auditor": _create_user(web_url, f"auditor-{tag}", "viewer", all_jobs=True),
    }
    tokens = {who: _create_token(web_url, uid, "tests") for who, uid in ids.items()}
    tokens["admin"] = http.admin_token()
    tokens["anonymous"] = ""
    tokens["wrong"] = "adk_" + "x" * 43
    revoked = _create_token(web_url, ids["owner"], "to revoke")
    listed = http.get(f"{web_url}/api/tokens", token=revoked).json()["tokens"]
    revoked_id = next(t["id"] for t in listed if t["name"] == "to revoke")
    assert http.delete(f"{web_url}/api/tokens/{revoked_id}").status_code == 200
    tokens["revoked"] = revoked
    expired = _create_token(web_url, ids["owner"], "short", expires_in=0.5)
    assert wait_until(lambda: _status(web_url, expired) == 401, timeout=10)
    tokens["expired"] = expired
    return Identities(tokens, ids)


def _status(base: str, token: str) -> int:
    return http.get(f"{base}/api/me", token=token).status_code


@pytest.fixture(scope="module")
def web_url(module_web: WebService) -> str:
    return module_web.url
