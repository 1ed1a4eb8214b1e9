"""`vlmevals exports list|retry|deliver` on a real outbox (MLflow configured without a server: rows fail)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner
from vlmevals.cli.exports import exports_app
from vlmevals.core.settings import get_settings
from vlmevals.db.engine import session_scope
from vlmevals.db.models import ExportOutbox

from tests.vlmevals.exports.runs_data import completed

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
