"""HTTP for tests and benches: `requests` with the platform's admin token by default.

`get`/`post`/`delete`/`request` take requests' arguments plus `token`: the
bearer token to send (default: `AGENTDECK_ADMIN_TOKEN` from the environment,
which the test platform exports); `token=""` sends none, as an anonymous
client would.
"""

from __future__ import annotations

import os
from typing import Any

import requests

DEFAULT_TIMEOUT = 10.0


def admin_token() -> str:
    return os.environ.get("AGENTDECK_ADMIN_TOKEN", "")


def auth_headers(token: str | None = None) -> dict[str, str]:
    """`Authorization: Bearer <token>` (the admin token when `token` is None); {} for ""."""
    token = admin_token() if token is None else token
    return {"Authorization": f"Bearer {token}"} if token else {}


def request(method: str, url: str, *, token: str | None = None, **kw: Any) -> requests.Response:
    headers = {**auth_headers(token), **(kw.pop("headers", None) or {})}
    kw.setdefault("timeout", DEFAULT_TIMEOUT)
    return requests.request(method, url, headers=headers, **kw)


def get(url: str, **kw: Any) -> requests.Response:
    return request("GET", url, **kw)


def post(url: str, **kw: Any) -> requests.Response:
    return request("POST", url, **kw)


def delete(url: str, **kw: Any) -> requests.Response:
    return request("DELETE", url, **kw)


def session(token: str | None = None) -> requests.Session:
    """A `requests.Session` that sends the token (the admin token when None) and no proxy."""
    s = requests.Session()
    s.trust_env = False
    s.headers.update(auth_headers(token))
    return s
