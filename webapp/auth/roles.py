"""Roles and the principal a request acts as: who may see and change which jobs.

Pure rules, no I/O: the guard, the REST handlers, the hub and the tests all
ask these.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    VIEWER = "viewer"  # reads what they may see
    OPERATOR = "operator"  # submits, and cancels / retries / answers their own jobs
    ADMIN = "admin"  # everything: all jobs, worker controls, users and tokens

    @property
    def rank(self) -> int:
        return _RANK[self]

    def at_least(self, other: Role) -> bool:
        return self.rank >= other.rank

    def capped(self, ceiling: Role | None) -> Role:
        """This role, lowered to `ceiling` (a token's role ceiling) when that is lower."""
        return self if ceiling is None or self.rank <= ceiling.rank else ceiling


_RANK = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.ADMIN: 2}


class Via(StrEnum):
    """How the principal was authenticated."""

    TOKEN = "token"  # an API token (Authorization: Bearer, or the WebSocket auth op)
    SESSION = "session"  # the browser's session cookie (state changes need the CSRF token)
    ADMIN_TOKEN = "admin_token"  # AGENTDECK_ADMIN_TOKEN, from the server's configuration
    OPEN = "open"  # --insecure-no-auth: everyone is the local admin


@dataclass(frozen=True)
class Principal:
    user_id: str
    name: str
    role: Role
    via: Via
    credential_id: str | None = None  # the token row, for revocation; None: configuration
    all_jobs: bool = False  # a user granted every job's visibility

    @property
    def sees_all(self) -> bool:
        """Sees every job, plain Celery tasks and the monitoring of workers and queues."""
        return self.role is Role.ADMIN or self.all_jobs

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    def can_see(self, owner_id: str | None) -> bool:
        return self.sees_all or (owner_id is not None and owner_id == self.user_id)

    def can_change(self, owner_id: str | None) -> bool:
        """Cancel, retry, answer: an operator's own jobs, or any job for an admin."""
        if self.is_admin:
            return True
        return (
            self.role.at_least(Role.OPERATOR)
            and owner_id is not None
            and (owner_id == self.user_id)
        )

    @property
    def visible_owner(self) -> str | None:
        """The one owner whose jobs this principal sees; None when it sees all."""
        return None if self.sees_all else self.user_id
