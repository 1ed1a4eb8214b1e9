"""a model's serve spec: the inference engine the service runs its weights in (JSONB), never with an endpoint of
its own

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 16:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("models", sa.Column("serve", postgresql.JSONB(astext_type=sa.Text()), nullable=True))
    op.create_check_constraint(
        "ck_models_serve_no_endpoint", "models", "NOT (serve IS NOT NULL AND endpoint_base_url IS NOT NULL)"
    )


def downgrade() -> None:
    op.drop_constraint("ck_models_serve_no_endpoint", "models", type_="check")
    op.drop_column("models", "serve")
