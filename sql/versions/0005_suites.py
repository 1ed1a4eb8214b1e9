"""suites: named, ordered, weighted sets of tasks (the overall board's columns)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 07:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SLUG_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,127}$"


def upgrade() -> None:
    op.create_table(
        "suites",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("display_name", sa.String(length=256), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(f"name ~ '{SLUG_PATTERN}'", name="ck_suites_name_slug"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "suite_tasks",
        sa.Column("suite_id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("weight", sa.Float(), server_default=sa.text("1.0"), nullable=False),
        sa.CheckConstraint("weight > 0", name="ck_suite_tasks_weight_positive"),
        sa.CheckConstraint("position >= 0", name="ck_suite_tasks_position_nonneg"),
        sa.ForeignKeyConstraint(["suite_id"], ["suites.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["task_id"], ["tasks.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("suite_id", "task_id"),
    )
    op.create_index("uq_suite_tasks_position", "suite_tasks", ["suite_id", "position"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_suite_tasks_position", table_name="suite_tasks")
    op.drop_table("suite_tasks")
    op.drop_table("suites")
