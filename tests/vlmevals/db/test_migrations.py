"""Migrations against a real PostgreSQL: up, down, up again, and the mapped models agree with them."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, pool, text
from sqlalchemy.exc import IntegrityError
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


def test_one_active_index_migration_keeps_existing_overlaps_as_forced(fresh_db: str) -> None:
    """Runs that overlapped before 0003 (force=true then left no mark) survive it: all but the oldest active
    run of a pair become `forced`, and the index then refuses a new unforced one."""
    eng = create_engine(fresh_db, poolclass=pool.NullPool)
    downgrade(fresh_db, "base")
    upgrade(fresh_db, "0002")
    with eng.begin() as conn:
        conn.execute(text("INSERT INTO tasks (name, display_name, vlmeval_data) VALUES ('t', 't', 'T')"))
        conn.execute(text("INSERT INTO models (name, display_name, vlmeval_model) VALUES ('m', 'm', 'M')"))
        for status in ("running", "queued", "completed"):
            conn.execute(
                text(
                    "INSERT INTO eval_runs (task_id, model_id, status, triggered_by, finished_at) "
                    "VALUES (1, 1, :s, 'cli', now())"
                ),
                {"s": status},
            )
    upgrade(fresh_db)
    with eng.connect() as conn:
        rows = conn.execute(text("SELECT status, forced FROM eval_runs ORDER BY id")).all()
    assert [tuple(r) for r in rows] == [("running", False), ("queued", True), ("completed", False)]
    with pytest.raises(IntegrityError, match="uq_eval_runs_one_active"), eng.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO eval_runs (task_id, model_id, status, triggered_by) "
                "VALUES (1, 1, 'queued', 'airflow_rest')"
            )
        )
    eng.dispose()


def test_sample_limit_migration_fills_existing_runs_from_their_options(fresh_db: str) -> None:
    """Runs stored before 0007 get `sample_limit` from `options.limit` (NULL without one), and new rows too."""
    eng = create_engine(fresh_db, poolclass=pool.NullPool)
    downgrade(fresh_db, "base")
    upgrade(fresh_db, "0006")
    with eng.begin() as conn:
        conn.execute(text("INSERT INTO tasks (name, display_name, vlmeval_data) VALUES ('t', 't', 'T')"))
        conn.execute(text("INSERT INTO models (name, display_name, vlmeval_model) VALUES ('m', 'm', 'M')"))
        for options in ('{"limit": 5}', '{"judge": "exact_matching"}', "{}"):
            conn.execute(
                text(
                    "INSERT INTO eval_runs (task_id, model_id, status, triggered_by, finished_at, options) "
                    "VALUES (1, 1, 'completed', 'cli', now(), CAST(:o AS jsonb))"
                ),
                {"o": options},
            )
    upgrade(fresh_db)
    with eng.begin() as conn:
        conn.execute(text("""UPDATE eval_runs SET options = '{"limit": 7}' WHERE id = 3"""))
        got = conn.execute(text("SELECT sample_limit FROM eval_runs ORDER BY id")).scalars().all()
    assert got == [5, None, 7]
    eng.dispose()


def test_triggered_by_migration_names_the_paths_and_back(fresh_db: str) -> None:
    """0009 renames stored values by the path they came by (the suite and checkpoint DAGs' runs known by their
    DAG run id); its downgrade gives back the old names."""
    old = [
        ("plugin", "evals_api__1__x"),
        ("rest", "manual__1"),
        ("cli", None),
        ("ui", "manual__2"),
        ("schedule", "nightly__x__3"),
        ("ui", "suite__p__4"),
        ("rest", "checkpoint__p__5"),
        ("backfill", None),
    ]
    eng = create_engine(fresh_db, poolclass=pool.NullPool)
    downgrade(fresh_db, "base")
    upgrade(fresh_db, "0008")
    with eng.begin() as conn:
        conn.execute(text("INSERT INTO tasks (name, display_name, vlmeval_data) VALUES ('t', 't', 'T')"))
        conn.execute(text("INSERT INTO models (name, display_name, vlmeval_model) VALUES ('m', 'm', 'M')"))
        for by, dag_run_id in old:
            conn.execute(
                text(
                    "INSERT INTO eval_runs (task_id, model_id, status, triggered_by, dag_run_id, finished_at) "
                    "VALUES (1, 1, 'completed', :by, :d, now())"
                ),
                {"by": by, "d": dag_run_id},
            )
    read = text("SELECT triggered_by FROM eval_runs ORDER BY id")
    upgrade(fresh_db, "0009")
    with eng.connect() as conn:
        new = conn.execute(read).scalars().all()
    assert new == ["api", "airflow_rest", "airflow_rest", "form", "nightly", "suite", "checkpoint", "backfill"]
    with pytest.raises(IntegrityError, match="ck_eval_runs_triggered_by"), eng.begin() as conn:
        conn.execute(text("UPDATE eval_runs SET triggered_by = 'rest' WHERE id = 1"))
    downgrade(fresh_db, "0008")
    with eng.connect() as conn:
        back = conn.execute(read).scalars().all()
    assert back == ["plugin", "rest", "rest", "ui", "schedule", "ui", "rest", "backfill"]
    eng.dispose()
