"""Admin-only endpoints: `Authorization: Bearer <AGENTDECK_ADMIN_TOKEN>`.

With no token configured, only requests from this machine (loopback) are
admitted, so a fresh local install works and nothing is open to the network.
Behind a reverse proxy every request looks local: set a token there.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import request

from webapp.errors import ApiError
from webapp.services import services

F = TypeVar("F", bound=Callable[..., Any])


def _loopback(addr: str | None) -> bool:
    try:
        return addr is not None and ipaddress.ip_address(addr).is_loopback
    except ValueError:
        return False


def check_admin() -> None:
    token = services().settings.admin_token
    header = request.headers.get("Authorization", "")
    if not token:
        if _loopback(request.remote_addr):
            return
        raise ApiError(
            403, "forbidden", "no admin token is configured: controls are allowed from loopback"
        )
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not given:
        raise ApiError(401, "unauthorized", "an admin token is required (Authorization: Bearer)")
    if not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise ApiError(401, "unauthorized", "the admin token is not valid")


def admin_required(fn: F) -> F:
    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        check_admin()
        return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
