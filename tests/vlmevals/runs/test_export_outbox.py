"""The outbox rows are written by the transition that finishes a run, for each configured exporter."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from vlmevals.core.settings import get_settings
from vlmevals.core.vocabulary import RunStatus
from vlmevals.db.engine import session_scope
from vlmevals.db.models import ExportOutbox
from vlmevals.runs import lifecycle as runs

from tests.vlmevals.exports.runs_data import TASK, VIA, completed, failed

pytestmark = pytest.mark.integration


def _rows(engine, run_id: int) -> list[tuple[str, str, int]]:
    with session_scope(engine) as s:
        rows = s.scalars(select(ExportOutbox).where(ExportOutbox.run_id == run_id).order_by(ExportOutbox.exporter))
        return [(r.exporter, r.state, r.attempts) for r in rows]


@pytest.fixture()
def exporters(monkeypatch: pytest.MonkeyPatch):
    def configure(value: str) -> None:
        monkeypatch.setenv("EVALS_EXPORTERS", value)
        get_settings.cache_clear()

    yield configure
    get_settings.cache_clear()


def test_no_exporters_no_rows(seeded, exporters) -> None:
    exporters("")
    assert _rows(seeded, completed(seeded)) == []


def test_completed_and_failed_runs_are_queued_for_every_exporter(seeded, exporters) -> None:
    exporters("tensorboard, MLflow")
    expected = [("mlflow", "pending", 0), ("tensorboard", "pending", 0)]
    assert _rows(seeded, completed(seeded)) == expected
    assert _rows(seeded, failed(seeded)) == expected


def test_cancelled_and_still_running_runs_are_not_queued(seeded, exporters) -> None:
    exporters("mlflow")
    with session_scope(seeded) as s:
        cancelled = runs.create_run(s, TASK, "demo-tiny-idefics3", triggered_by=VIA).id
        running = runs.create_run(s, TASK, "demo-tiny-idefics3", triggered_by=VIA, forced=True).id
    with session_scope(seeded) as s:
        assert runs.mark_cancelled(s, cancelled, user="bob")
        assert runs.mark_running(s, running, attempt=1)
    with session_scope(seeded) as s:
        assert not runs.mark_failed(s, cancelled, "late callback")  # no transition, no row
    assert _rows(seeded, cancelled) == [] and _rows(seeded, running) == []


def test_rows_commit_with_the_callers_unit_of_work_or_not_at_all(seeded, exporters) -> None:
    """The rows are written in the caller's session: its rollback takes back the completion and the rows."""
    exporters("mlflow")
    with session_scope(seeded) as s:
        run_id = runs.create_run(s, TASK, "demo-tiny-idefics3", triggered_by=VIA).id

    with pytest.raises(RuntimeError), session_scope(seeded) as s:
        assert runs.mark_completed(s, run_id, primary_metric=0.5, metrics={})
        assert [r.exporter for r in s.scalars(select(ExportOutbox).where(ExportOutbox.run_id == run_id))] == ["mlflow"]
        raise RuntimeError("the step failed after the completion")
    with session_scope(seeded) as s:
        assert runs.get_run(s, run_id).status == RunStatus.QUEUED
    assert _rows(seeded, run_id) == []


def test_unknown_exporter_is_refused_naming_the_fix(exporters) -> None:
    with pytest.raises(ValueError, match=r"unknown exporter.*neptune.*mlflow, tensorboard, wandb"):
        exporters("mlflow,neptune")
        get_settings()
