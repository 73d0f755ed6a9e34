"""Users and their credentials in SQL, and turning a presented secret into a principal.

Used by the web app (every request), the launcher (the first admin and its
login link) and the accounts CLI. Lookups of a secret are cached for a moment
(`CACHE_SECONDS`): a revoked token stops working, and its WebSockets close,
within that much more.
"""

from __future__ import annotations

import hmac
import re
import threading
import time
from collections.abc import Iterable
from enum import StrEnum

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from webapp.auth.credentials import (
    hash_password,
    new_id,
    new_secret,
    secret_hash,
    verify_password,
)
from webapp.auth.roles import Principal, Role, Via
from workers.models import ApiToken, User

CACHE_SECONDS = 2.0
CACHE_MAX = 10_000
SESSION_SECONDS = 14 * 24 * 3600
LOGIN_LINK_SECONDS = 24 * 3600
ADMIN_NAME = "admin"
USER_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")


class TokenKind(StrEnum):
    API = "api"  # named, made by a person for scripts; shown once
    SESSION = "session"  # a browser's login, in its cookie
    LOGIN = "login"  # a one-time login link (the launcher prints one)


class AccountError(ValueError):
    """A request about accounts that cannot be done (bad name, unknown user, ...)."""

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


def parse_role(value: object, field: str = "role") -> Role:
    try:
        return Role(str(value))
    except ValueError:
        roles = ", ".join(r.value for r in Role)
        raise AccountError("invalid_input", f'"{field}" must be one of {roles}', field) from None


class AccountStore:
    def __init__(self, sessions: sessionmaker, admin_token: str = "") -> None:
        self.sessions = sessions
        self.admin_token = admin_token
        self._cache: dict[str, tuple[Principal | None, float]] = {}
        self._lock = threading.Lock()
        self._admin_id: str | None = None

    # -- users ----------------------------------------------------------------------
    def create_user(
        self,
        name: str,
        role: Role,
        *,
        password: str | None = None,
        all_jobs: bool = False,
        user_id: str | None = None,
    ) -> User:
        if not isinstance(name, str) or not USER_NAME.match(name):
            raise AccountError(
                "invalid_input", '"name" must be 1-64 letters, digits or _.@-', "name"
            )
        user = User(
            id=user_id or new_id(),
            name=name,
            role=Role(role).value,
            all_jobs=all_jobs,
            password_hash=hash_password(password) if password else None,
            disabled=False,
            created_at=time.time(),
        )
        try:
            with self.sessions.begin() as s:
                s.add(user)
        except IntegrityError:
            raise AccountError("conflict", f"a user named {name!r} exists", "name") from None
        return user

    def get_user(self, user_id: str) -> User:
        with self.sessions() as s:
            user = s.get(User, user_id)
        if user is None:
            raise AccountError("not_found", f"no user {user_id!r}")
        return user

    def find_user(self, name: str) -> User | None:
        with self.sessions() as s:
            return s.scalar(select(User).where(User.name == name))

    def list_users(self) -> list[User]:
        with self.sessions() as s:
            return list(s.scalars(select(User).order_by(User.created_at)).all())

    def update_user(
        self,
        user_id: str,
        *,
        role: Role | None = None,
        disabled: bool | None = None,
        all_jobs: bool | None = None,
        password: str | None = None,
    ) -> User:
        with self.sessions.begin() as s:
            user = s.get(User, user_id)
            if user is None:
                raise AccountError("not_found", f"no user {user_id!r}")
            if role is not None:
                user.role = Role(role).value
            if disabled is not None:
                user.disabled = disabled
            if all_jobs is not None:
                user.all_jobs = all_jobs
            if password is not None:
                user.password_hash = hash_password(password) if password else None
        self.forget_cached()
        return user

    def has_admin(self) -> bool:
        with self.sessions() as s:
            found = s.scalar(
                select(User.id).where(User.role == Role.ADMIN.value, User.disabled.is_(False))
            )
        return found is not None

    def admin_user_id(self) -> str:
        """The user that AGENTDECK_ADMIN_TOKEN acts as (and the first run creates):
        the user named `admin`, made on first use."""
        if self._admin_id is None:
            user = self.find_user(ADMIN_NAME)
            if user is None:
                try:
                    user = self.create_user(ADMIN_NAME, Role.ADMIN, user_id=ADMIN_NAME)
                except AccountError:  # another process made it meanwhile
                    user = self.find_user(ADMIN_NAME)
                    assert user is not None
            self._admin_id = user.id
        return self._admin_id

    # -- tokens ---------------------------------------------------------------------
    def create_token(
        self,
        user_id: str,
        name: str,
        *,
        kind: TokenKind = TokenKind.API,
        role: Role | None = None,
        expires_in: float | None = None,
    ) -> tuple[ApiToken, str]:
        """A new credential and its secret (shown once; only its hash is kept)."""
        self.get_user(user_id)
        if not isinstance(name, str) or not 0 < len(name.strip()) <= 100:
            raise AccountError("invalid_input", '"name" must be 1-100 characters', "name")
        secret = new_secret()
        now = time.time()
        token = ApiToken(
            id=new_id(),
            user_id=user_id,
            name=name.strip(),
            kind=kind.value,
            secret_hash=secret_hash(secret),
            role=role.value if role is not None else None,
            created_at=now,
            expires_at=now + expires_in if expires_in else None,
            revoked_at=None,
        )
        with self.sessions.begin() as s:
            s.add(token)
        return token, secret

    def list_tokens(
        self, user_id: str | None = None, kinds: Iterable[TokenKind] = (TokenKind.API,)
    ) -> list[ApiToken]:
        """Live (not revoked, not expired) tokens, of one user or of everyone."""
        now = time.time()
        query = select(ApiToken).where(
            ApiToken.kind.in_([k.value for k in kinds]),
            ApiToken.revoked_at.is_(None),
            (ApiToken.expires_at.is_(None)) | (ApiToken.expires_at > now),
        )
        if user_id is not None:
            query = query.where(ApiToken.user_id == user_id)
        with self.sessions() as s:
            return list(s.scalars(query.order_by(ApiToken.created_at)).all())

    def get_token(self, token_id: str) -> ApiToken:
        with self.sessions() as s:
            token = s.get(ApiToken, token_id)
        if token is None or token.revoked_at is not None:
            raise AccountError("not_found", f"no token {token_id!r}")
        return token

    def revoke_token(self, token_id: str) -> None:
        with self.sessions.begin() as s:
            s.execute(
                update(ApiToken)
                .where(ApiToken.id == token_id, ApiToken.revoked_at.is_(None))
                .values(revoked_at=time.time())
            )
        self.forget_cached()

    # -- authentication ---------------------------------------------------------------
    def authenticate(self, secret: str) -> Principal | None:
        """The principal a presented secret stands for; None if it stands for nobody."""
        if not secret or len(secret) > 512:
            return None
        if self.admin_token and hmac.compare_digest(
            secret.encode("utf-8", "replace"), self.admin_token.encode()
        ):
            return Principal(self.admin_user_id(), ADMIN_NAME, Role.ADMIN, Via.ADMIN_TOKEN)
        key = secret_hash(secret)
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None and hit[1] > now:
            return hit[0]
        principal = self._lookup(key)
        with self._lock:
            if len(self._cache) >= CACHE_MAX:
                self._cache.clear()
            self._cache[key] = (principal, now + CACHE_SECONDS)
        return principal

    def _lookup(self, key: str) -> Principal | None:
        with self.sessions() as s:
            row = s.execute(
                select(ApiToken, User)
                .join(User, User.id == ApiToken.user_id)
                .where(ApiToken.secret_hash == key)
            ).first()
        if row is None:
            return None
        token, user = row
        if not _live(token, user):
            return None
        ceiling = Role(token.role) if token.role else None
        via = Via.SESSION if token.kind == TokenKind.SESSION else Via.TOKEN
        return Principal(
            user.id, user.name, Role(user.role).capped(ceiling), via, token.id, user.all_jobs
        )

    def redeem(self, secret: str) -> Principal | None:
        """A login with a token (a login link, an API token): its principal, and a
        one-time login token is used up."""
        principal = self.authenticate(secret)
        if principal is None or principal.credential_id is None:
            return principal
        with self.sessions.begin() as s:
            token = s.get(ApiToken, principal.credential_id)
            if token is None or token.kind != TokenKind.LOGIN:
                return principal
            used = s.execute(
                update(ApiToken)
                .where(ApiToken.id == token.id, ApiToken.revoked_at.is_(None))
                .values(revoked_at=time.time())
            )
        self.forget_cached()
        return principal if used.rowcount == 1 else None  # type: ignore[attr-defined]

    def check_password(self, name: str, password: str) -> User | None:
        user = self.find_user(name) if isinstance(name, str) else None
        if user is None or user.disabled:
            verify_password(password, _DUMMY_HASH)  # same time as a wrong password
            return None
        return user if verify_password(password, user.password_hash) else None

    def still_valid(self, credential_ids: Iterable[str]) -> set[str]:
        """Which of these credentials still work (for closing revoked users' sockets)."""
        ids = list(set(credential_ids))
        if not ids:
            return set()
        with self.sessions() as s:
            rows = s.execute(
                select(ApiToken, User)
                .join(User, User.id == ApiToken.user_id)
                .where(ApiToken.id.in_(ids))
            ).all()
        return {token.id for token, user in rows if _live(token, user)}

    def forget_cached(self) -> None:
        with self._lock:
            self._cache.clear()


def _live(token: ApiToken, user: User) -> bool:
    if token.revoked_at is not None or user.disabled:
        return False
    return token.expires_at is None or token.expires_at > time.time()


_DUMMY_HASH = hash_password("not a password anyone has")
