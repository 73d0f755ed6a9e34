"""Indexes for monitoring: sort by received/started, filter by worker, children of a task.

Revision ID: 0002_monitoring_indexes
Revises: 0001_initial
Create Date: 2026-11-25
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002_monitoring_indexes"
down_revision: str | Sequence[str] | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_jobs_received", "jobs", ["received_at"])
    op.create_index("ix_jobs_started", "jobs", ["started_at"])
    op.create_index("ix_jobs_worker_created", "jobs", ["worker", "created_at"])
    op.create_index("ix_jobs_parent", "jobs", ["parent_id"])


def downgrade() -> None:
    op.drop_index("ix_jobs_parent", table_name="jobs")
    op.drop_index("ix_jobs_worker_created", table_name="jobs")
    op.drop_index("ix_jobs_started", table_name="jobs")
    op.drop_index("ix_jobs_received", table_name="jobs")
