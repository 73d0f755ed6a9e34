"""Drop the `workers` table: worker presence lives in Redis (heartbeats); nothing used it.

Revision ID: 0004_drop_workers_table
Revises: 0003_accounts
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_drop_workers_table"
down_revision: str | Sequence[str] | None = "0003_accounts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_table("workers")


def downgrade() -> None:
    op.create_table(
        "workers",
        sa.Column("hostname", sa.String(length=255), nullable=False),
        sa.Column("info", sa.JSON(), nullable=True),
        sa.Column("first_seen", sa.Float(), nullable=False),
        sa.Column("last_seen", sa.Float(), nullable=False),
        sa.Column("online", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("hostname"),
    )
