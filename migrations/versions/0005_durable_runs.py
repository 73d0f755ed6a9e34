"""Durable runs: recorded steps, and the run number of each job.

Revision ID: 0005_durable_runs
Revises: 0004_drop_workers_table
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_durable_runs"
down_revision: str | Sequence[str] | None = "0004_drop_workers_table"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "run_steps",
        sa.Column("job_id", sa.String(length=64), nullable=False),
        sa.Column("idx", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.Column("wake_at", sa.Float(), nullable=True),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("finished_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("job_id", "idx"),
    )
    op.create_index("ix_run_steps_waiting", "run_steps", ["status", "kind", "wake_at"])
    op.add_column(
        "jobs", sa.Column("run_no", sa.Integer(), nullable=False, server_default="0")
    )


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("run_no")
    op.drop_index("ix_run_steps_waiting", table_name="run_steps")
    op.drop_table("run_steps")
