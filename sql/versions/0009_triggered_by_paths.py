"""triggered_by values that say the path a run came by: plugin -> api, rest -> airflow_rest, ui -> form,
schedule -> nightly; the suite and checkpoint DAGs' runs (stored as ui and rest, known by their DAG run id
prefix) -> suite, checkpoint; cli (never written by the service) -> airflow_rest

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 17:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD = ("ui", "rest", "plugin", "schedule", "backfill", "cli")
NEW = ("api", "airflow_rest", "form", "nightly", "suite", "checkpoint", "backfill")

UPGRADE = """
UPDATE eval_runs SET triggered_by = CASE
    WHEN triggered_by = 'ui' AND left(dag_run_id, 7) = 'suite__' THEN 'suite'
    WHEN triggered_by = 'rest' AND left(dag_run_id, 12) = 'checkpoint__' THEN 'checkpoint'
    WHEN triggered_by = 'plugin' THEN 'api'
    WHEN triggered_by IN ('rest', 'cli') THEN 'airflow_rest'
    WHEN triggered_by = 'ui' THEN 'form'
    WHEN triggered_by = 'schedule' THEN 'nightly'
    ELSE triggered_by END
WHERE triggered_by <> 'backfill'
"""

DOWNGRADE = """
UPDATE eval_runs SET triggered_by = CASE triggered_by
    WHEN 'api' THEN 'plugin'
    WHEN 'airflow_rest' THEN 'rest'
    WHEN 'checkpoint' THEN 'rest'
    WHEN 'form' THEN 'ui'
    WHEN 'suite' THEN 'ui'
    WHEN 'nightly' THEN 'schedule'
    ELSE triggered_by END
WHERE triggered_by <> 'backfill'
"""


def _in(values: tuple[str, ...]) -> str:
    return "triggered_by IN (" + ", ".join(f"'{v}'" for v in values) + ")"


def upgrade() -> None:
    op.drop_constraint("ck_eval_runs_triggered_by", "eval_runs", type_="check")
    op.execute(UPGRADE)
    op.alter_column("eval_runs", "triggered_by", server_default="airflow_rest")
    op.create_check_constraint("ck_eval_runs_triggered_by", "eval_runs", _in(NEW))


def downgrade() -> None:
    op.drop_constraint("ck_eval_runs_triggered_by", "eval_runs", type_="check")
    op.execute(DOWNGRADE)
    op.alter_column("eval_runs", "triggered_by", server_default="rest")
    op.create_check_constraint("ck_eval_runs_triggered_by", "eval_runs", _in(OLD))
