"""one active run per (task, model) unless forced: a partial unique index, and the `forced` flag that exempts a run

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 07:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ACTIVE_UNFORCED = "status IN ('queued', 'running') AND NOT forced"


def upgrade() -> None:
    op.add_column("eval_runs", sa.Column("forced", sa.Boolean(), server_default=sa.text("false"), nullable=False))
    # runs that already overlap (started with force=true before the flag existed) keep running, marked as forced:
    # the oldest active run of each pair stays the one the index guards
    op.execute(
        """
        UPDATE eval_runs SET forced = true
        WHERE status IN ('queued', 'running')
          AND id <> (SELECT min(o.id) FROM eval_runs o
                     WHERE o.task_id = eval_runs.task_id AND o.model_id = eval_runs.model_id
                       AND o.status IN ('queued', 'running'))
        """
    )
    op.create_index(
        "uq_eval_runs_one_active",
        "eval_runs",
        ["task_id", "model_id"],
        unique=True,
        postgresql_where=sa.text(ACTIVE_UNFORCED),
    )


def downgrade() -> None:
    op.drop_index("uq_eval_runs_one_active", table_name="eval_runs", postgresql_where=sa.text(ACTIVE_UNFORCED))
    op.drop_column("eval_runs", "forced")
