"""Pure rules of access, without services: roles, visibility, hosts, origins, secrets."""

from __future__ import annotations

import pytest

from webapp.auth.credentials import (
    csrf_ok,
    csrf_token,
    hash_password,
    new_secret,
    secret_hash,
    verify_password,
)
from webapp.auth.origins import allowed_hosts, host_allowed, hostname_of, origin_allowed
from webapp.auth.roles import Principal, Role, Via
from webapp.auth.views import safe_next

ALICE = Principal("u-alice", "alice", Role.OPERATOR, Via.TOKEN, "t1")
VIEWER = Principal("u-vic", "vic", Role.VIEWER, Via.TOKEN, "t2")
AUDITOR = Principal("u-aud", "aud", Role.VIEWER, Via.TOKEN, "t3", all_jobs=True)
ADMIN = Principal("u-root", "root", Role.ADMIN, Via.SESSION, "t4")


def test_a_token_ceiling_only_lowers_a_role() -> None:
    assert Role.ADMIN.capped(Role.VIEWER) is Role.VIEWER
    assert Role.VIEWER.capped(Role.ADMIN) is Role.VIEWER
    assert Role.OPERATOR.capped(None) is Role.OPERATOR


@pytest.mark.parametrize(
    ("who", "owner", "sees", "changes"),
    [
        (ALICE, "u-alice", True, True),
        (ALICE, "u-bob", False, False),
        (ALICE, None, False, False),  # a plain Celery task has no owner
        (VIEWER, "u-vic", True, False),  # a viewer reads but never changes
        (AUDITOR, "u-bob", True, False),  # sees all, changes nothing
        (ADMIN, "u-bob", True, True),
        (ADMIN, None, True, True),
    ],
)
def test_who_sees_and_changes_which_job(
    who: Principal, owner: str | None, sees: bool, changes: bool
) -> None:
    assert who.can_see(owner) is sees
    assert who.can_change(owner) is changes


def test_only_admins_and_all_jobs_users_see_everything() -> None:
    assert ADMIN.visible_owner is None and AUDITOR.visible_owner is None
    assert ALICE.visible_owner == "u-alice"


@pytest.mark.parametrize(
    ("host", "ok"),
    [
        ("127.0.0.1:8000", True),
        ("localhost:8000", True),
        ("[::1]:8000", True),
        ("attacker.example", False),  # DNS rebinding: a name that resolves to us
        ("attacker.example:8000", False),
        ("", False),
    ],
)
def test_default_hosts_are_this_machine(host: str, ok: bool) -> None:
    assert host_allowed(host, allowed_hosts((), "127.0.0.1")) is ok


def test_configured_hosts_and_subdomains() -> None:
    allowed = allowed_hosts(("deck.example.com", ".corp.example"), "0.0.0.0")
    assert host_allowed("DECK.example.com:443", allowed)
    assert host_allowed("a.corp.example", allowed) and host_allowed("corp.example", allowed)
    assert not host_allowed("localhost", allowed)
    assert not host_allowed("evilcorp.example", allowed)
    assert host_allowed("anything", ("*",))
    assert hostname_of("[::1]:80") == "::1"


@pytest.mark.parametrize(
    ("origin", "ok"),
    [
        ("http://127.0.0.1:8000", True),
        ("https://127.0.0.1:8000", True),  # TLS ends at a proxy: the host is what counts
        ("http://127.0.0.1:9999", False),  # another port is another origin
        ("http://evil.test:8000", False),
        ("null", False),  # sandboxed frames, file:// pages
        ("https://ops.example.com", True),  # listed
    ],
)
def test_origins(origin: str, ok: bool) -> None:
    assert origin_allowed(origin, "127.0.0.1:8000", ("https://ops.example.com",)) is ok


def test_secrets_hashes_and_csrf() -> None:
    a, b = new_secret(), new_secret()
    assert a != b and a.startswith("adk_") and len(a) > 40
    assert secret_hash(a) == secret_hash(a) != secret_hash(b)
    token = csrf_token(a)
    assert csrf_ok(a, token) and not csrf_ok(b, token) and not csrf_ok(a, None)


def test_passwords_are_salted_and_checked() -> None:
    stored = hash_password("correct horse")
    assert stored != hash_password("correct horse")  # salted
    assert verify_password("correct horse", stored)
    assert not verify_password("wrong horse", stored)
    assert not verify_password("x", None) and not verify_password("x", "plain")


@pytest.mark.parametrize(
    ("target", "safe"),
    [
        ("/jobs/1", "/jobs/1"),
        ("//evil.test/x", "/"),
        ("https://evil.test", "/"),
        ("/\\evil.test", "/"),
        (None, "/"),
        ("", "/"),
    ],
)
def test_login_redirects_stay_on_this_site(target: str | None, safe: str) -> None:
    assert safe_next(target) == safe
