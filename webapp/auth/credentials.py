"""Secrets: new tokens, their stored hashes, passwords, and the CSRF token of a session.

Tokens are 256 random bits, so a SHA-256 of them is enough to store (no slow
hash); passwords are people's, so they get scrypt. The CSRF token is derived
from the session secret, so it needs no storage and no server-side key, and a
page on another site, which cannot read the cookie, cannot compute it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

TOKEN_PREFIX = "adk_"
_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}


def new_secret() -> str:
    """A new token secret, as given to its owner once."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "replace")).hexdigest()


def new_id() -> str:
    return secrets.token_hex(8)


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)  # type: ignore[arg-type]
    return "scrypt$" + base64.b64encode(salt).decode() + "$" + base64.b64encode(digest).decode()


def verify_password(password: str, stored: str | None) -> bool:
    if not stored or not stored.startswith("scrypt$"):
        return False
    try:
        _, salt_b64, digest_b64 = stored.split("$")
        salt, digest = base64.b64decode(salt_b64), base64.b64decode(digest_b64)
    except ValueError:
        return False
    given = hashlib.scrypt(
        password.encode("utf-8", "replace"),
        salt=salt,
        **_SCRYPT,  # type: ignore[arg-type]
    )
    return hmac.compare_digest(given, digest)


def csrf_token(session_secret: str) -> str:
    return hmac.new(session_secret.encode(), b"agentdeck-csrf", hashlib.sha256).hexdigest()


def csrf_ok(session_secret: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(csrf_token(session_secret), given or "")
