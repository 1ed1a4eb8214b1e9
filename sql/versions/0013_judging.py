"""judging: re-judged runs (eval_runs.source_run_id), judge failures counted apart (eval_runs.samples_judge_failed,
eval_samples.judge_failed), and the judge cache every worker shares (judge_cache: one answer per request hash)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 19:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("eval_runs", sa.Column("source_run_id", sa.BigInteger(), nullable=True))
    op.create_foreign_key(
        "fk_eval_runs_source_run", "eval_runs", "eval_runs", ["source_run_id"], ["id"], ondelete="SET NULL"
    )
    op.add_column("eval_runs", sa.Column("samples_judge_failed", sa.Integer(), nullable=True))
    op.add_column(
        "eval_samples", sa.Column("judge_failed", sa.Boolean(), server_default=sa.text("false"), nullable=False)
    )
    op.create_table(
        "judge_cache",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("judge_model", sa.String(length=256), nullable=False),
        sa.Column("response", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("hits", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )


def downgrade() -> None:
    op.drop_table("judge_cache")
    op.drop_column("eval_samples", "judge_failed")
    op.drop_column("eval_runs", "samples_judge_failed")
    op.drop_constraint("fk_eval_runs_source_run", "eval_runs", type_="foreignkey")
    op.drop_column("eval_runs", "source_run_id")
