"""checkpoints of a model (step or label, weights path or Hub revision), the model's suite, per-model request
concurrency, suite enrolments; one active run per (task, model, checkpoint)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 14:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ACTIVE_UNFORCED = "status IN ('queued', 'running') AND NOT forced"
LABEL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"


def _checkpoints() -> None:
    op.create_table(
        "checkpoints",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("step", sa.BigInteger(), nullable=True),
        sa.Column("label", sa.String(length=128), nullable=True),
        sa.Column("weights_path", sa.Text(), nullable=True),
        sa.Column("hub_revision", sa.String(length=256), nullable=True),
        sa.Column("created_by", sa.String(length=256), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("step IS NOT NULL OR label IS NOT NULL", name="ck_checkpoints_step_or_label"),
        sa.CheckConstraint("step IS NULL OR step >= 0", name="ck_checkpoints_step_nonneg"),
        sa.CheckConstraint(f"label IS NULL OR label ~ '{LABEL_PATTERN}'", name="ck_checkpoints_label"),
        sa.CheckConstraint("num_nonnulls(weights_path, hub_revision) = 1", name="ck_checkpoints_one_source"),
        sa.ForeignKeyConstraint(["model_id"], ["models.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "uq_checkpoints_model_step", "checkpoints", ["model_id", "step"], unique=True,
        postgresql_where=sa.text("step IS NOT NULL"),
    )  # fmt: skip
    op.create_index(
        "uq_checkpoints_model_label", "checkpoints", ["model_id", "label"], unique=True,
        postgresql_where=sa.text("label IS NOT NULL"),
    )  # fmt: skip


def upgrade() -> None:
    _checkpoints()
    op.add_column("models", sa.Column("suite_id", sa.Integer(), nullable=True))
    op.create_foreign_key("fk_models_suite", "models", "suites", ["suite_id"], ["id"], ondelete="SET NULL")
    op.add_column("models", sa.Column("api_nproc", sa.Integer(), nullable=True))
    op.create_check_constraint("ck_models_api_nproc_positive", "models", "api_nproc IS NULL OR api_nproc > 0")

    op.add_column("eval_runs", sa.Column("checkpoint_id", sa.Integer(), nullable=True))
    op.create_foreign_key(
        "fk_eval_runs_checkpoint", "eval_runs", "checkpoints", ["checkpoint_id"], ["id"], ondelete="RESTRICT"
    )
    op.create_index("ix_eval_runs_checkpoint", "eval_runs", ["checkpoint_id"])
    op.drop_index("uq_eval_runs_one_active", table_name="eval_runs", postgresql_where=sa.text(ACTIVE_UNFORCED))
    op.create_index(
        "uq_eval_runs_one_active", "eval_runs",
        ["task_id", "model_id", sa.text("coalesce(checkpoint_id, 0)")], unique=True,
        postgresql_where=sa.text(ACTIVE_UNFORCED),
    )  # fmt: skip

    op.add_column("enrolments", sa.Column("suite_id", sa.Integer(), nullable=True))
    op.create_foreign_key("fk_enrolments_suite", "enrolments", "suites", ["suite_id"], ["id"], ondelete="CASCADE")
    op.drop_constraint("ck_enrolments_target", "enrolments", type_="check")
    op.create_check_constraint(
        "ck_enrolments_target", "enrolments", "task_id IS NOT NULL OR model_id IS NOT NULL OR suite_id IS NOT NULL"
    )
    op.create_check_constraint("ck_enrolments_suite_no_task", "enrolments", "suite_id IS NULL OR task_id IS NULL")
    op.drop_index("uq_enrolments_target", table_name="enrolments")
    op.create_index(
        "uq_enrolments_target", "enrolments",
        [sa.text("coalesce(task_id, 0)"), sa.text("coalesce(model_id, 0)"), sa.text("coalesce(suite_id, 0)")],
        unique=True,
    )  # fmt: skip


def downgrade() -> None:
    op.drop_index("uq_enrolments_target", table_name="enrolments")
    op.execute("DELETE FROM enrolments WHERE suite_id IS NOT NULL")
    op.drop_constraint("ck_enrolments_suite_no_task", "enrolments", type_="check")
    op.drop_constraint("ck_enrolments_target", "enrolments", type_="check")
    op.create_check_constraint("ck_enrolments_target", "enrolments", "task_id IS NOT NULL OR model_id IS NOT NULL")
    op.drop_column("enrolments", "suite_id")
    op.create_index(
        "uq_enrolments_target", "enrolments", [sa.text("coalesce(task_id, 0)"), sa.text("coalesce(model_id, 0)")],
        unique=True,
    )  # fmt: skip
    op.drop_index("uq_eval_runs_one_active", table_name="eval_runs", postgresql_where=sa.text(ACTIVE_UNFORCED))
    # checkpoint runs stay (as runs of their model); active ones would collide with each other, so they become forced
    op.execute("UPDATE eval_runs SET forced = true WHERE checkpoint_id IS NOT NULL AND status IN ('queued', 'running')")
    op.create_index(
        "uq_eval_runs_one_active", "eval_runs", ["task_id", "model_id"], unique=True,
        postgresql_where=sa.text(ACTIVE_UNFORCED),
    )  # fmt: skip
    op.drop_index("ix_eval_runs_checkpoint", table_name="eval_runs")
    op.drop_column("eval_runs", "checkpoint_id")
    op.drop_constraint("ck_models_api_nproc_positive", "models", type_="check")
    op.drop_column("models", "api_nproc")
    op.drop_constraint("fk_models_suite", "models", type_="foreignkey")
    op.drop_column("models", "suite_id")
    op.drop_index("uq_checkpoints_model_label", table_name="checkpoints")
    op.drop_index("uq_checkpoints_model_step", table_name="checkpoints")
    op.drop_table("checkpoints")
