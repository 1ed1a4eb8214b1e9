"""The deliver_exports DAG run whole (dag.test) against our outbox, TensorBoard as the tracker."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import select
from vlmevals.core.settings import get_settings
from vlmevals.db.engine import session_scope
from vlmevals.db.models import ExportOutbox

from tests.vlmevals.exports.runs_data import completed

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def _dag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(ROOT / "dags" / "deliver_exports.py")).dags["deliver_exports"]


def test_scheduled_only_with_exporters_and_delivers(airflow_db, seeded, monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("EVALS_EXPORTERS", raising=False)
    get_settings.cache_clear()
    assert _dag().schedule is None
    monkeypatch.setenv("EVALS_EXPORTERS", "tensorboard")
    monkeypatch.setenv("EVALS_TENSORBOARD_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        run_id = completed(seeded)
        dag = _dag()
        assert dag.max_active_runs == 1 and dag.schedule == dt.timedelta(minutes=1)
        dr = dag.test()
        assert str(dr.state) == "success"
        with session_scope(seeded) as s:
            row = s.scalar(select(ExportOutbox).where(ExportOutbox.run_id == run_id))
            assert row is not None and row.state == "delivered", row and row.last_error
            assert Path(row.tracker_ref or "").is_file()
    finally:
        get_settings.cache_clear()
