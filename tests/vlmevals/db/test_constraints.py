"""The database itself refuses data that would corrupt the catalogue or the run history."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DataError, IntegrityError

pytestmark = pytest.mark.integration


def _insert_task(conn, name: str = "t1") -> int:
    return conn.execute(
        text("INSERT INTO tasks (name, display_name, vlmeval_data) VALUES (:n, 'T', 'D') RETURNING id"), {"n": name}
    ).scalar_one()


def _insert_model(conn, name: str = "m1") -> int:
    return conn.execute(
        text("INSERT INTO models (name, display_name, vlmeval_model) VALUES (:n, 'M', 'X') RETURNING id"), {"n": name}
    ).scalar_one()


@pytest.mark.parametrize("bad", ["Upper", "-lead", "has space", "", "x" * 129])
def test_slug_check(engine, bad: str) -> None:
    with pytest.raises((IntegrityError, DataError)), engine.begin() as conn:
        _insert_task(conn, bad)


def test_unique_names(engine) -> None:
    with engine.begin() as conn:
        _insert_task(conn, "dup")
    with pytest.raises(IntegrityError), engine.begin() as conn:
        _insert_task(conn, "dup")


def test_status_trigger_and_fk_checks(engine) -> None:
    with engine.begin() as conn:
        t, m = _insert_task(conn), _insert_model(conn)
    ins = text(
        "INSERT INTO eval_runs (task_id, model_id, status, triggered_by, dag_run_id) VALUES (:t, :m, :s, :by, :d)"
    )
    for bad in [{"s": "exploded", "by": "form"}, {"s": "queued", "by": "nobody"}, {"s": "queued", "by": "ui"}]:
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.execute(ins, {"t": t, "m": m, "d": None, **bad})
    with pytest.raises(IntegrityError), engine.begin() as conn:  # unknown task
        conn.execute(ins, {"t": 9999, "m": m, "s": "queued", "by": "form", "d": None})
    with engine.begin() as conn:
        conn.execute(ins, {"t": t, "m": m, "s": "queued", "by": "form", "d": "manual__1"})
    with pytest.raises(IntegrityError), engine.begin() as conn:  # one eval run per DAG run
        conn.execute(ins, {"t": t, "m": m, "s": "queued", "by": "form", "d": "manual__1"})
    with pytest.raises(IntegrityError), engine.begin() as conn:  # completed needs finished_at
        conn.execute(text("UPDATE eval_runs SET status = 'completed'"))
    with pytest.raises(IntegrityError), engine.begin() as conn:  # runs keep their model
        conn.execute(text("DELETE FROM models WHERE id = :m"), {"m": m})


def test_model_spec_xor_endpoint(engine) -> None:
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO models (name, display_name, vlmeval_model, model_spec, endpoint_base_url) "
                "VALUES ('both', 'B', 'X', '{\"class\": \"A\"}', 'http://127.0.0.1:1/v1')"
            )
        )
