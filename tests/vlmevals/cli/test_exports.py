"""`vlmevals exports list|retry|resync|deliver|backfill` on a real outbox (MLflow configured without a server:
rows fail)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner
from vlmevals.cli.exports import exports_app
from vlmevals.core.settings import get_settings
from vlmevals.db.engine import session_scope
from vlmevals.db.models import EvalRun, ExportOutbox
from vlmevals.runs import lifecycle as runs

from tests.vlmevals.exports.runs_data import MODEL, TASK, VIA, completed, failed

pytestmark = pytest.mark.integration


def test_spent_rows_listed_then_requeued(seeded: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVALS_EXPORTERS", "mlflow")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("EVALS_EXPORT_MAX_ATTEMPTS", "1")
    get_settings.cache_clear()
    try:
        run_id = completed(seeded)
        runner = CliRunner()
        out = runner.invoke(exports_app, ["deliver"])
        assert out.exit_code == 0 and "'failed': 1" in out.output, out.output
        listed = runner.invoke(exports_app, ["list", "--state", "failed"])
        assert listed.exit_code == 0 and "MLFLOW_TRACKING_URI" in listed.output, listed.output
        assert "failed: 1" in listed.output
        retried = runner.invoke(exports_app, ["retry", "--run-id", str(run_id)])
        assert retried.exit_code == 0 and "re-queued 1 failed export(s)" in retried.output
        with session_scope(seeded) as s:
            row = s.scalar(select(ExportOutbox).where(ExportOutbox.run_id == run_id))
            assert row is not None and (row.state, row.attempts) == ("pending", 0)
    finally:
        get_settings.cache_clear()


def _outbox(engine: Any) -> list[tuple[int, str, str]]:
    with session_scope(engine) as s:
        rows = s.scalars(select(ExportOutbox).order_by(ExportOutbox.run_id, ExportOutbox.exporter))
        return [(r.run_id, r.exporter, r.state) for r in rows]


def test_history_is_queued_once_per_exporter(seeded: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVALS_EXPORTERS", "")
    get_settings.cache_clear()
    try:
        done, broken, old = completed(seeded), failed(seeded), completed(seeded)
        with session_scope(seeded) as s:
            cancelled = runs.create_run(s, TASK, MODEL, triggered_by=VIA, forced=True).id
            long_ago = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
            s.execute(update(EvalRun).where(EvalRun.id == old).values(finished_at=long_ago))
        with session_scope(seeded) as s:
            assert runs.mark_cancelled(s, cancelled, user="bob")
        assert _outbox(seeded) == [], "no exporter configured when the runs finished"
        runner = CliRunner()
        since = ["backfill", "--since", "2021-06-01"]

        first = runner.invoke(exports_app, [*since, "--exporter", "mlflow"])
        assert first.exit_code == 0 and "queued 2 export(s)" in first.output, first.output
        assert _outbox(seeded) == [(done, "mlflow", "pending"), (broken, "mlflow", "pending")]
        again = runner.invoke(exports_app, [*since, "--exporter", "mlflow"])
        assert again.exit_code == 0 and "queued 0 export(s)" in again.output, again.output

        monkeypatch.setenv("EVALS_EXPORTERS", "mlflow,tensorboard")  # the default: every configured exporter
        get_settings.cache_clear()
        both = runner.invoke(exports_app, ["backfill", "--since", "2019-12-31"])
        assert both.exit_code == 0 and "queued 4 export(s)" in both.output, both.output  # old: 2, the others: 1 each
        assert len(_outbox(seeded)) == 6 and all(state == "pending" for *_, state in _outbox(seeded))
    finally:
        get_settings.cache_clear()


def test_backfill_names_a_missing_or_unknown_exporter(seeded: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVALS_EXPORTERS", "")
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        none = runner.invoke(exports_app, ["backfill", "--since", "2024-01-01"])
        assert none.exit_code == 1 and "set EVALS_EXPORTERS" in none.output, none.output
        comet = runner.invoke(exports_app, ["backfill", "--since", "2024-01-01", "--exporter", "comet"])
        assert comet.exit_code == 1 and "no exporter named comet" in comet.output, comet.output
        bad_day = runner.invoke(exports_app, ["backfill", "--since", "01/06/2024"])
        assert bad_day.exit_code == 2 and "%Y-%m-%d" in bad_day.output, bad_day.output
    finally:
        get_settings.cache_clear()


def test_resync_requeues_one_exporters_delivered_and_failed_rows(seeded: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVALS_EXPORTERS", "mlflow,tensorboard")
    get_settings.cache_clear()
    try:
        first, second, old = completed(seeded), failed(seeded), completed(seeded)
        with session_scope(seeded) as s:
            s.execute(update(ExportOutbox).where(ExportOutbox.run_id != second).values(state="delivered", attempts=1))
            s.execute(update(ExportOutbox).where(ExportOutbox.run_id == second).values(state="failed", attempts=12))
            long_ago = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
            s.execute(update(EvalRun).where(EvalRun.id == old).values(finished_at=long_ago))
        runner = CliRunner()
        out = runner.invoke(exports_app, ["resync", "--exporter", "mlflow", "--since", "2021-01-01"])
        assert out.exit_code == 0 and "re-queued 2 export(s) for mlflow" in out.output, out.output
        assert _outbox(seeded) == [
            (first, "mlflow", "pending"),
            (first, "tensorboard", "delivered"),
            (second, "mlflow", "pending"),
            (second, "tensorboard", "failed"),
            (old, "mlflow", "delivered"),
            (old, "tensorboard", "delivered"),
        ]
        one = runner.invoke(exports_app, ["resync", "--exporter", "tensorboard", "--run-id", str(old)])
        assert one.exit_code == 0 and "re-queued 1 export(s) for tensorboard" in one.output, one.output
        bad = runner.invoke(exports_app, ["resync", "--exporter", "comet"])
        assert bad.exit_code == 1 and "no exporter named 'comet'" in bad.output, bad.output
    finally:
        get_settings.cache_clear()
