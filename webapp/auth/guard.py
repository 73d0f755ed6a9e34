"""Every request: Host check, who is asking, Origin and CSRF checks, then the route.

Authentication comes from `Authorization: Bearer <token>` (scripts, the CLI,
other services) or the session cookie (browsers). A state change made with
the cookie also needs the `X-CSRF-Token` header that pages read from their
`<meta name="csrf-token">`; a page on another site can read neither. Routes
state what they need with `require(role)` or `require_all_jobs`.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar
from urllib.parse import quote

from flask import Flask, Response, g, redirect, request

from webapp.auth.credentials import csrf_ok, csrf_token
from webapp.auth.origins import allowed_hosts, host_allowed, origin_allowed
from webapp.auth.roles import Principal, Role, Via
from webapp.auth.store import AccountStore
from webapp.errors import ApiError, error_response
from workers.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])

SESSION_COOKIE = "agentdeck_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/login", "/api/session", "/favicon.ico"})
PUBLIC_PREFIXES = ("/static/",)
# Probes (load balancers, Kubernetes) ask by address: these reveal nothing, so any Host.
ANY_HOST_PATHS = frozenset({"/healthz", "/readyz"})
# Agentdeck's own endpoints take JSON bodies only (Flower's take forms, as Flower does).
JSON_ONLY_PREFIXES = ("/api/jobs", "/api/users", "/api/tokens", "/api/session", "/api/monitor/")
OPEN_PRINCIPAL = Principal("local", "local", Role.ADMIN, Via.OPEN)


class Guard:
    def __init__(self, settings: Settings, store: AccountStore) -> None:
        self.settings = settings
        self.store = store
        self.hosts = allowed_hosts(settings.allowed_hosts, settings.host)

    def init_app(self, app: Flask) -> None:
        app.extensions["agentdeck_guard"] = self
        app.before_request(self.check_request)

    # -- the hook ---------------------------------------------------------------------
    def check_request(self) -> Any:
        if request.path not in ANY_HOST_PATHS and not host_allowed(request.host, self.hosts):
            return error_response(
                400,
                "bad_host",
                f"this server does not answer for the host {request.host[:100]!r}; "
                "list it in AGENTDECK_ALLOWED_HOSTS",
            )
        if self._foreign_origin():
            return error_response(403, "bad_origin", "requests from other sites are refused")
        principal, session_secret = self.authenticate()
        g.principal = principal
        g.session_secret = session_secret
        if request.method not in SAFE_METHODS:
            refused = self._check_state_change(principal, session_secret)
            if refused is not None:
                return refused
        if principal is None and not _public(request.path):
            return self._unauthenticated()
        return None

    def _foreign_origin(self) -> bool:
        """A state change, or a WebSocket, asked for by a page of another site."""
        origin = request.headers.get("Origin")
        if not origin or (request.method in SAFE_METHODS and request.path != "/ws"):
            return False
        return not origin_allowed(origin, request.host, self.settings.allowed_origins)

    def authenticate(self) -> tuple[Principal | None, str | None]:
        """(principal, session secret if it came from the cookie)."""
        if self.settings.insecure_no_auth:
            return OPEN_PRINCIPAL, None
        header = request.headers.get("Authorization", "")
        if header:
            scheme, _, secret = header.partition(" ")
            if scheme.lower() != "bearer":
                return None, None
            return self.store.authenticate(secret.strip()), None
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie:
            principal = self.store.authenticate(cookie)
            if principal is not None and principal.via is Via.SESSION:
                return principal, cookie
        return None, None

    def _check_state_change(self, principal: Principal | None, session: str | None) -> Any:
        if session is not None and not csrf_ok(session, request.headers.get(CSRF_HEADER)):
            return error_response(
                403, "csrf", f"a state change made with the session cookie needs {CSRF_HEADER}"
            )
        if request.path.startswith(JSON_ONLY_PREFIXES) and request.content_length != 0:
            has_body = request.content_length or request.headers.get("Transfer-Encoding")
            if has_body and request.mimetype != "application/json":
                return error_response(415, "unsupported_media_type", "send application/json")
        return None

    def _unauthenticated(self) -> Any:
        if request.path == "/ws":
            return None  # the socket may still authenticate with its first frame
        if (
            request.method == "GET"
            and not request.path.startswith("/api/")
            and (request.path not in ("/metrics",))
        ):
            return redirect("/login?next=" + quote(request.full_path.rstrip("?"), safe="/?=&"))
        header = request.headers.get("Authorization")
        message = "the token is not valid" if header else "log in, or send a bearer token"
        response: Response
        response, status = error_response(401, "unauthorized", message)
        response.headers["WWW-Authenticate"] = 'Bearer realm="agentdeck"'
        return response, status


def _public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


# -- what routes use ---------------------------------------------------------------------
def current_principal() -> Principal:
    principal: Principal | None = g.get("principal")
    if principal is None:
        raise ApiError(401, "unauthorized", "log in, or send a bearer token")
    return principal


def page_csrf_token() -> str:
    """For the page's <meta name="csrf-token">: empty when not logged in by cookie."""
    secret = g.get("session_secret")
    return csrf_token(secret) if secret else ""


def require(role: Role) -> Callable[[F], F]:
    def decorate(fn: F) -> F:
        @wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            principal = current_principal()
            if not principal.role.at_least(role):
                raise ApiError(403, "forbidden", f"this needs the {role.value} role")
            return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def require_all_jobs(fn: F) -> F:
    """Monitoring of workers, queues and every task: admins and users who see all jobs."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not current_principal().sees_all:
            raise ApiError(403, "forbidden", "monitoring is for admins and users who see all jobs")
        return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


admin_required = require(Role.ADMIN)
