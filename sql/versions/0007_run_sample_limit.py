"""eval_runs.sample_limit: the run option `limit` as a generated column, so boards and regression baselines
can keep to full-dataset runs in SQL (existing rows are filled from their options by PostgreSQL itself)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 15:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# a copy of vlmevals.db.base.SAMPLE_LIMIT_SQL as of this revision (a migration must not change with the code)
SAMPLE_LIMIT_SQL = (
    "CASE WHEN jsonb_typeof(options -> 'limit') = 'number' "
    "THEN least((options ->> 'limit')::numeric, 2147483647)::integer END"
)


def upgrade() -> None:
    generated = sa.Computed(SAMPLE_LIMIT_SQL, persisted=True)
    op.add_column("eval_runs", sa.Column("sample_limit", sa.Integer(), generated, nullable=True))


def downgrade() -> None:
    op.drop_column("eval_runs", "sample_limit")
