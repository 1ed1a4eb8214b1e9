"""export outbox: one row per (eval run, exporter), written with the run's completion or failure and sent to the
experiment trackers (MLflow, TensorBoard) by the deliver_exports DAG; a checkpoint's training run in those trackers
(checkpoints.mlflow_run_id, checkpoints.tensorboard_dir) to log its eval scores into

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "export_outbox",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("run_id", sa.BigInteger(), nullable=False),
        sa.Column("exporter", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=16), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("tracker_ref", sa.Text(), nullable=True),
        sa.CheckConstraint("state IN ('pending', 'delivered', 'failed')", name="ck_export_outbox_state"),
        sa.CheckConstraint("attempts >= 0", name="ck_export_outbox_attempts"),
        sa.ForeignKeyConstraint(["run_id"], ["eval_runs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("run_id", "exporter", name="uq_export_outbox_run_exporter"),
    )
    op.create_index(
        "ix_export_outbox_due", "export_outbox", ["next_attempt_at"], postgresql_where=sa.text("state = 'pending'")
    )
    op.add_column("checkpoints", sa.Column("mlflow_run_id", sa.String(length=64), nullable=True))
    op.add_column("checkpoints", sa.Column("tensorboard_dir", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("checkpoints", "tensorboard_dir")
    op.drop_column("checkpoints", "mlflow_run_id")
    op.drop_index("ix_export_outbox_due", table_name="export_outbox")
    op.drop_table("export_outbox")
