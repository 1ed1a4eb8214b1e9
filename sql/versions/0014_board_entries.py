"""board entries: what the boards rank (best and latest counted run per task x model, over all checkpoints and per
checkpoint), kept in the transaction that changes a run (vlmevals.runs.board_entries), filled here from the runs;
board stamps: a version per task that the page caches are keyed by

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-20 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The rule as of this revision (vlmevals.runs.counted and runs.board_entries._computed; `vlmevals db verify-boards`
# compares the table with the code's recomputation): completed, scored runs; full-dataset (sample_limit IS NULL)
# unless the entry includes limited runs; best in the task's direction, then latest, then highest id.
_FILL = """
WITH counted_runs AS (
    SELECT r.task_id, r.model_id, r.checkpoint_id, r.id AS run_id,
           CASE WHEN t.higher_is_better THEN r.primary_metric ELSE -r.primary_metric END AS rank_score,
           r.primary_metric AS score, r.finished_at, r.sample_limit, r.ci_low, r.ci_high,
           r.samples_total, r.samples_failed, r.sample_limit IS NULL AS full_dataset
    FROM eval_runs r JOIN tasks t ON t.id = r.task_id
    WHERE r.status = 'completed' AND r.primary_metric IS NOT NULL
)
INSERT INTO board_entries (task_id, model_id, checkpoint_key, pick, include_limited, run_id, rank_score, score,
                           finished_at, sample_limit, ci_low, ci_high, samples_total, samples_failed)
SELECT * FROM (SELECT DISTINCT ON (task_id, model_id) task_id, model_id, 0, 'best', false, run_id, rank_score,
        score, finished_at, sample_limit, ci_low, ci_high, samples_total, samples_failed
    FROM counted_runs WHERE full_dataset
    ORDER BY task_id, model_id, rank_score DESC, finished_at DESC, run_id DESC) a
UNION ALL
SELECT * FROM (SELECT DISTINCT ON (task_id, model_id) task_id, model_id, 0, 'best', true, run_id, rank_score,
        score, finished_at, sample_limit, ci_low, ci_high, samples_total, samples_failed
    FROM counted_runs
    ORDER BY task_id, model_id, rank_score DESC, finished_at DESC, run_id DESC) b
UNION ALL
SELECT * FROM (SELECT DISTINCT ON (task_id, model_id) task_id, model_id, 0, 'latest', false, run_id, rank_score,
        score, finished_at, sample_limit, ci_low, ci_high, samples_total, samples_failed
    FROM counted_runs WHERE full_dataset
    ORDER BY task_id, model_id, finished_at DESC, run_id DESC) c
UNION ALL
SELECT * FROM (SELECT DISTINCT ON (task_id, model_id) task_id, model_id, 0, 'latest', true, run_id, rank_score,
        score, finished_at, sample_limit, ci_low, ci_high, samples_total, samples_failed
    FROM counted_runs
    ORDER BY task_id, model_id, finished_at DESC, run_id DESC) d
UNION ALL
SELECT * FROM (SELECT DISTINCT ON (task_id, model_id, checkpoint_id) task_id, model_id, checkpoint_id, 'latest',
        false, run_id, rank_score, score, finished_at, sample_limit, ci_low, ci_high, samples_total, samples_failed
    FROM counted_runs WHERE full_dataset AND checkpoint_id IS NOT NULL
    ORDER BY task_id, model_id, checkpoint_id, finished_at DESC, run_id DESC) e
"""


def upgrade() -> None:
    op.create_table(
        "board_entries",
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("checkpoint_key", sa.Integer(), nullable=False),
        sa.Column("pick", sa.String(length=8), nullable=False),
        sa.Column("include_limited", sa.Boolean(), nullable=False),
        sa.Column("run_id", sa.BigInteger(), nullable=False),
        sa.Column("rank_score", sa.Float(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sample_limit", sa.Integer(), nullable=True),
        sa.Column("ci_low", sa.Float(), nullable=True),
        sa.Column("ci_high", sa.Float(), nullable=True),
        sa.Column("samples_total", sa.Integer(), nullable=True),
        sa.Column("samples_failed", sa.Integer(), nullable=True),
        sa.CheckConstraint("pick IN ('best', 'latest')", name="ck_board_entries_pick"),
        sa.ForeignKeyConstraint(["task_id"], ["tasks.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["model_id"], ["models.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["run_id"], ["eval_runs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("task_id", "model_id", "checkpoint_key", "pick", "include_limited"),
    )
    op.create_index(
        "ix_board_entries_order",
        "board_entries",
        ["task_id", "pick", "include_limited", "checkpoint_key", sa.text("rank_score DESC")],
    )
    op.create_index("ix_board_entries_model", "board_entries", ["model_id", "checkpoint_key"])
    op.create_index("ix_board_entries_run", "board_entries", ["run_id"])
    op.create_table(
        "board_stamps",
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.ForeignKeyConstraint(["task_id"], ["tasks.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("task_id"),
    )
    op.execute(_FILL)
    op.execute("INSERT INTO board_stamps (task_id, version) SELECT id, 1 FROM tasks")


def downgrade() -> None:
    op.drop_table("board_stamps")
    op.drop_index("ix_board_entries_run", table_name="board_entries")
    op.drop_index("ix_board_entries_model", table_name="board_entries")
    op.drop_index("ix_board_entries_order", table_name="board_entries")
    op.drop_table("board_entries")
