"""Accounts: users, API tokens, job owners; idempotency keys scoped by owner.

Revision ID: 0003_accounts
Revises: 0002_monitoring_indexes
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_accounts"
down_revision: str | Sequence[str] | None = "0002_monitoring_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# SQLite's reflected UNIQUE (idempotency_key) has no name: this convention gives it one.
UNIQUE_NAMES = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def _drop_global_idempotency_unique() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint("jobs_idempotency_key_key", "jobs", type_="unique")
        return
    with op.batch_alter_table("jobs", naming_convention=UNIQUE_NAMES) as batch:
        batch.drop_constraint("uq_jobs_idempotency_key", type_="unique")


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("all_jobs", sa.Boolean(), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=True),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=True),
        sa.Column("revoked_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("secret_hash"),
    )
    op.create_index("ix_api_tokens_user_id", "api_tokens", ["user_id"])
    op.add_column("jobs", sa.Column("owner_id", sa.String(length=64), nullable=True))
    _drop_global_idempotency_unique()
    op.create_index("ix_jobs_owner_created", "jobs", ["owner_id", "created_at"])
    op.create_index(
        "ux_jobs_owner_idempotency", "jobs", ["owner_id", "idempotency_key"], unique=True
    )


def downgrade() -> None:
    op.drop_index("ux_jobs_owner_idempotency", table_name="jobs")
    op.drop_index("ix_jobs_owner_created", table_name="jobs")
    with op.batch_alter_table("jobs") as batch:
        batch.create_unique_constraint("jobs_idempotency_key_key", ["idempotency_key"])
        batch.drop_column("owner_id")
    op.drop_index("ix_api_tokens_user_id", table_name="api_tokens")
    op.drop_table("api_tokens")
    op.drop_table("users")
