"""Logging in and out, who am I, and managing users and tokens (`/login`, `/api/...`)."""

from __future__ import annotations

import contextlib
import math
from typing import Any

import redis
from flask import (
    Blueprint,
    current_app,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
)
from werkzeug.wrappers import Response as BaseResponse

from webapp.auth.credentials import csrf_token
from webapp.auth.guard import SESSION_COOKIE, admin_required, current_principal
from webapp.auth.roles import Principal, Role, Via
from webapp.auth.store import SESSION_SECONDS, AccountError, AccountStore, TokenKind, parse_role
from webapp.errors import ApiError
from webapp.services import services
from webapp.views import page_headers
from workers.models import ApiToken, User

bp = Blueprint("auth", __name__)
bp.after_request(page_headers)

MAX_TOKEN_SECONDS = 10 * 365 * 24 * 3600
LOGIN_ATTEMPTS = 10  # wrong passwords per user name ...
LOGIN_WINDOW_SECONDS = 300  # ... in this many seconds, then 429 until it passes


def store() -> AccountStore:
    accounts: AccountStore = current_app.extensions["agentdeck_accounts"]
    return accounts


def user_to_dict(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "name": user.name,
        "role": user.role,
        "all_jobs": bool(user.all_jobs),
        "disabled": bool(user.disabled),
        "has_password": user.password_hash is not None,
        "created_at": user.created_at,
    }


def token_to_dict(token: ApiToken) -> dict[str, Any]:
    return {
        "id": token.id,
        "user_id": token.user_id,
        "name": token.name,
        "kind": token.kind,
        "role": token.role,
        "created_at": token.created_at,
        "expires_at": token.expires_at,
    }


def _account_error(exc: AccountError) -> ApiError:
    status = {"not_found": 404, "conflict": 409}.get(exc.code, 422)
    extra = {"field": exc.field} if exc.field else {}
    return ApiError(status, exc.code, exc.message, **extra)


def safe_next(target: str | None) -> str:
    """Only a path on this site: never `//elsewhere` or a full URL."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    return target


def _start_session(principal: Principal, body: BaseResponse) -> BaseResponse:
    """Make a session credential for the principal's user and put it in the cookie."""
    _, secret = store().create_token(
        principal.user_id,
        "browser session",
        kind=TokenKind.SESSION,
        role=principal.role,  # logging in with a capped token gives a capped session
        expires_in=SESSION_SECONDS,
    )
    body.set_cookie(
        SESSION_COOKIE,
        secret,
        max_age=SESSION_SECONDS,
        httponly=True,
        samesite="Lax",
        secure=request.is_secure,
        path="/",
    )
    body.headers["X-CSRF-Token"] = csrf_token(secret)
    return body


# -- pages -------------------------------------------------------------------------------
@bp.get("/login")
def login_page() -> Any:
    target = safe_next(request.args.get("next"))
    secret = request.args.get("token")
    if secret:
        principal = store().redeem(secret)
        if principal is not None:
            return _start_session(principal, redirect(target))
        html = render_template(
            "login.html",
            page="login",
            title="Log in",
            next=target,
            error="That link or token "
            "is not valid (a login link works once). Ask for a new one, or log in below.",
        )
        return make_response(html, 401)
    return render_template("login.html", page="login", title="Log in", next=target, error="")


@bp.get("/account")
def account_page() -> Any:
    current_principal()
    return render_template("account.html", page="account", title="Account")


# -- the session --------------------------------------------------------------------------
@bp.post("/api/session")
def log_in() -> Any:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, "bad_request", 'send {"token"} or {"name", "password"}')
    principal: Principal | None = None
    if isinstance(body.get("token"), str):
        principal = store().redeem(body["token"])
    elif isinstance(body.get("name"), str) and isinstance(body.get("password"), str):
        principal = _password_login(body["name"][:64], body["password"])
    if principal is None:
        raise ApiError(401, "unauthorized", "wrong name, password or token")
    return _start_session(principal, jsonify(_me(principal)))


@bp.delete("/api/session")
def log_out() -> Any:
    principal = current_principal()
    if principal.via is Via.SESSION and principal.credential_id:
        store().revoke_token(principal.credential_id)
    response = jsonify({"logged_out": True})
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def _password_login(name: str, password: str) -> Principal | None:
    """Check a password, at most `LOGIN_ATTEMPTS` wrong ones per name per window."""
    svc = services()
    key = svc.settings.keys.login_failures(name)
    try:
        failures = int(svc.redis.get(key) or 0)
    except redis.RedisError:
        failures = 0  # Redis away: no throttling rather than no logins
    if failures >= LOGIN_ATTEMPTS:
        raise ApiError(
            429, "too_many_attempts", f"too many failed logins for {name!r}; try again later"
        )
    user = store().check_password(name, password)
    with contextlib.suppress(redis.RedisError):
        if user is None:
            pipe = svc.redis.pipeline()
            pipe.incr(key)
            pipe.expire(key, LOGIN_WINDOW_SECONDS)
            pipe.execute()
        else:
            svc.redis.delete(key)
    if user is None:
        return None
    return Principal(user.id, user.name, Role(user.role), Via.SESSION)


def _me(principal: Principal) -> dict[str, Any]:
    return {
        "id": principal.user_id,
        "name": principal.name,
        "role": principal.role.value,
        "all_jobs": principal.sees_all,
        "via": principal.via.value,
    }


@bp.get("/api/me")
def me() -> Any:
    return jsonify(_me(current_principal()))


# -- users (admins) ---------------------------------------------------------------------------
@bp.get("/api/users")
@admin_required
def list_users() -> Any:
    return jsonify({"users": [user_to_dict(u) for u in store().list_users()]})


@bp.post("/api/users")
@admin_required
def create_user() -> Any:
    body = _object_body()
    password = _password(body)
    try:
        user = store().create_user(
            body.get("name"),  # type: ignore[arg-type]
            parse_role(body.get("role", Role.VIEWER.value)),
            password=password,
            all_jobs=_bool(body, "all_jobs", False),
        )
    except AccountError as exc:
        raise _account_error(exc) from None
    return jsonify(user_to_dict(user)), 201


@bp.patch("/api/users/<user_id>")
@admin_required
def update_user(user_id: str) -> Any:
    body = _object_body()
    password = _password(body)
    try:
        user = store().update_user(
            user_id,
            role=parse_role(body["role"]) if "role" in body else None,
            disabled=_bool(body, "disabled", None),
            all_jobs=_bool(body, "all_jobs", None),
            password=password,
        )
    except AccountError as exc:
        raise _account_error(exc) from None
    return jsonify(user_to_dict(user))


# -- tokens --------------------------------------------------------------------------------------
@bp.get("/api/tokens")
def list_tokens() -> Any:
    principal = current_principal()
    everyone = principal.is_admin and request.args.get("all") == "1"
    tokens = store().list_tokens(None if everyone else principal.user_id)
    return jsonify({"tokens": [token_to_dict(t) for t in tokens]})


@bp.post("/api/tokens")
def create_token() -> Any:
    principal = current_principal()
    body = _object_body()
    user_id = body.get("user_id", principal.user_id)
    if user_id != principal.user_id and not principal.is_admin:
        raise ApiError(403, "forbidden", "only admins make tokens for other users")
    role = parse_role(body["role"]) if body.get("role") is not None else None
    if role is not None and not principal.role.at_least(role):
        raise ApiError(403, "forbidden", "a token cannot have more power than its maker")
    if role is None and user_id == principal.user_id and principal.role is not Role.ADMIN:
        role = principal.role  # a token made through a capped token stays capped
    expires_in = body.get("expires_in")
    if expires_in is not None and (
        isinstance(expires_in, bool)
        or not isinstance(expires_in, int | float)
        or not math.isfinite(expires_in)
        or not 0 < expires_in <= MAX_TOKEN_SECONDS
    ):
        raise ApiError(
            422,
            "invalid_input",
            '"expires_in" must be seconds, up to ten years',
            field="expires_in",
        )
    try:
        token, secret = store().create_token(
            str(user_id), body.get("name", ""), role=role, expires_in=expires_in
        )
    except AccountError as exc:
        raise _account_error(exc) from None
    return jsonify({**token_to_dict(token), "token": secret}), 201


@bp.delete("/api/tokens/<token_id>")
def revoke_token(token_id: str) -> Any:
    principal = current_principal()
    try:
        token = store().get_token(token_id)
    except AccountError as exc:
        raise _account_error(exc) from None
    if token.user_id != principal.user_id and not principal.is_admin:
        raise ApiError(404, "not_found", f"no token {token_id!r}")
    store().revoke_token(token_id)
    return jsonify({"revoked": token_id})


def _object_body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, "bad_request", "the body must be a JSON object")
    return body


def _password(body: dict[str, Any]) -> str | None:
    password = body.get("password")
    if password is not None and (not isinstance(password, str) or len(password) < 8):
        raise ApiError(
            422, "invalid_input", '"password" must be 8 characters or more', field="password"
        )
    return password


def _bool(body: dict[str, Any], name: str, default: bool | None) -> Any:
    value = body.get(name, default)
    if value is not None and not isinstance(value, bool):
        raise ApiError(422, "invalid_input", f'"{name}" must be true or false', field=name)
    return value
