"""a checkpoint's training run in W&B (checkpoints.wandb_run_path, 'entity/project/run_id'): its suite's eval
scores are logged into that run against the checkpoint's step

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 19:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("checkpoints", sa.Column("wandb_run_path", sa.String(length=256), nullable=True))


def downgrade() -> None:
    op.drop_column("checkpoints", "wandb_run_path")
