"""Migrations against a real PostgreSQL: up, down, up again, and the mapped models agree with them."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, pool, text
from vlmevals.db.engine import downgrade, upgrade
from vlmevals.db.models import Base

from tests.conftest import _db_url, create_database

pytestmark = pytest.mark.integration


@pytest.fixture()
def fresh_db(pg_server: str) -> str:
    name = "evals_migrations_test"
    create_database(name)
    return _db_url(name)


def test_upgrade_downgrade_upgrade(fresh_db: str) -> None:
    eng = create_engine(fresh_db, poolclass=pool.NullPool)
    upgrade(fresh_db)
    assert {"tasks", "models", "eval_runs", "eval_run_events"} <= set(inspect(eng).get_table_names())
    downgrade(fresh_db, "base")
    assert set(inspect(eng).get_table_names()) <= {"alembic_version"}
    upgrade(fresh_db)
    with eng.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM eval_runs")).scalar() == 0
        version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    assert version is not None
    eng.dispose()


def test_models_match_migrations(db_url: str) -> None:
    eng = create_engine(db_url, poolclass=pool.NullPool)
    with eng.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    eng.dispose()
    assert diff == [], f"ORM models and migrations differ: {diff}"
