"""model servers: an inference engine per (model, checkpoint) that the service starts on leased GPUs, at most one
live at a time (a partial unique index), the server each eval run of a served model sends its requests to, and
whether a run was recorded by a suite or checkpoint fan-out (its server stops once that batch is over)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 19:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATES = "state IN ('starting', 'ready', 'stopping', 'stopped', 'failed')"
LIVE = "state IN ('starting', 'ready')"


def upgrade() -> None:
    ts = sa.DateTime(timezone=True)
    op.create_table(
        "model_servers",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("checkpoint_id", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(length=16), server_default="starting", nullable=False),
        sa.Column("engine", sa.String(length=32), nullable=False),
        sa.Column("args", postgresql.JSONB(), server_default=sa.text("'[]'::jsonb"), nullable=False),
        sa.Column("gpus", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("linger_s", sa.Float(), nullable=False),
        sa.Column("startup_timeout_s", sa.Float(), nullable=False),
        sa.Column("weights", sa.Text(), nullable=True),
        sa.Column("served_model_name", sa.String(length=256), nullable=False),
        sa.Column("engine_version", sa.String(length=64), nullable=True),
        sa.Column("command", sa.Text(), nullable=True),
        sa.Column("host", sa.String(length=256), nullable=True),
        sa.Column("port", sa.Integer(), nullable=True),
        sa.Column("base_url", sa.String(length=512), nullable=True),
        sa.Column("worker", sa.String(length=256), nullable=True),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("devices", sa.String(length=64), nullable=True),
        sa.Column("log_path", sa.Text(), nullable=True),
        sa.Column("loads", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("dag_id", sa.String(length=250), nullable=True),
        sa.Column("dag_run_id", sa.String(length=250), nullable=True),
        sa.Column("requested_by_run_id", sa.BigInteger(), nullable=True),
        sa.Column("stop_requested_by", sa.String(length=256), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_at", ts, server_default=sa.text("now()"), nullable=False),
        sa.Column("started_at", ts, nullable=True),
        sa.Column("ready_at", ts, nullable=True),
        sa.Column("heartbeat_at", ts, nullable=True),
        sa.Column("idle_since", ts, nullable=True),
        sa.Column("stopped_at", ts, nullable=True),
        sa.Column("detail", postgresql.JSONB(), server_default=sa.text("'{}'::jsonb"), nullable=False),
        sa.CheckConstraint(STATES, name="ck_model_servers_state"),
        sa.ForeignKeyConstraint(["model_id"], ["models.id"], ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["checkpoint_id"], ["checkpoints.id"], ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "uq_model_servers_one_live",
        "model_servers",
        ["model_id", sa.text("coalesce(checkpoint_id, 0)")],
        unique=True,
        postgresql_where=sa.text(LIVE),
    )
    op.create_index("ix_model_servers_created", "model_servers", ["created_at"])
    op.add_column("eval_runs", sa.Column("server_id", sa.BigInteger(), nullable=True))
    op.add_column("eval_runs", sa.Column("batched", sa.Boolean(), server_default=sa.text("false"), nullable=False))
    op.create_foreign_key(
        "fk_eval_runs_server", "eval_runs", "model_servers", ["server_id"], ["id"], ondelete="SET NULL"
    )


def downgrade() -> None:
    op.drop_constraint("fk_eval_runs_server", "eval_runs", type_="foreignkey")
    op.drop_column("eval_runs", "batched")
    op.drop_column("eval_runs", "server_id")
    op.drop_index("ix_model_servers_created", table_name="model_servers")
    op.drop_index("uq_model_servers_one_live", table_name="model_servers")
    op.drop_table("model_servers")
