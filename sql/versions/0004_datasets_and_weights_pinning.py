"""datasets and weights fetched before the GPU slot: task dataset_url/md5 and judge need, model revision

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 07:05:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("tasks", sa.Column("dataset_url", sa.String(length=2048), nullable=True))
    op.add_column("tasks", sa.Column("dataset_md5", sa.String(length=32), nullable=True))
    op.add_column("tasks", sa.Column("needs_llm_judge", sa.Boolean(), nullable=True))
    op.add_column("tasks", sa.Column("default_judge", sa.String(length=128), nullable=True))
    op.add_column("models", sa.Column("revision", sa.String(length=256), nullable=True))


def downgrade() -> None:
    op.drop_column("models", "revision")
    op.drop_column("tasks", "default_judge")
    op.drop_column("tasks", "needs_llm_judge")
    op.drop_column("tasks", "dataset_md5")
    op.drop_column("tasks", "dataset_url")
