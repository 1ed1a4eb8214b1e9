"""Delivery bookkeeping with a tracker that cannot be reached: backoff, spent attempts, re-queue, the API list.
(The real trackers: test_mlflow_exporter.py, test_tensorboard_exporter.py.)"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select
from vlmevals.core.settings import get_settings
from vlmevals.db.engine import session_scope
from vlmevals.db.models import ExportOutbox
from vlmevals.exports.delivery import backoff, deliver_pending
from vlmevals.exports.outbox import list_exports, retry_failed
from vlmevals.runs import lifecycle as runs

from tests.vlmevals.exports.runs_data import completed

pytestmark = pytest.mark.integration


@pytest.fixture()
def unreachable(monkeypatch: pytest.MonkeyPatch):
    """MLflow configured without MLFLOW_TRACKING_URI: every attempt fails with an error naming the setting."""
    monkeypatch.setenv("EVALS_EXPORTERS", "mlflow")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("EVALS_EXPORT_MAX_ATTEMPTS", "3")
    monkeypatch.setenv("EVALS_EXPORT_BACKOFF_S", "10")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _row(engine, run_id: int) -> ExportOutbox:
    with session_scope(engine) as s:
        row = s.scalar(select(ExportOutbox).where(ExportOutbox.run_id == run_id))
        assert row is not None
        s.expunge(row)
        return row


def test_backoff_doubles_up_to_an_hour(unreachable) -> None:
    settings = get_settings()
    assert [backoff(settings, n).total_seconds() for n in (1, 2, 3)] == [10, 20, 40]
    assert backoff(settings, 30).total_seconds() == 3600


def test_failures_back_off_then_fail_and_retry_requeues(seeded, unreachable) -> None:
    run_id = completed(seeded)
    t0 = dt.datetime.now(dt.UTC)
    assert deliver_pending(seeded, now=t0).as_dict() == {"delivered": 0, "retrying": 1, "failed": 0}
    row = _row(seeded, run_id)
    assert (row.state, row.attempts) == ("pending", 1)
    assert "MLFLOW_TRACKING_URI" in (row.last_error or "")
    assert row.next_attempt_at == t0 + dt.timedelta(seconds=10)
    assert deliver_pending(seeded, now=t0 + dt.timedelta(seconds=5)).as_dict()["retrying"] == 0  # not due yet
    deliver_pending(seeded, now=t0 + dt.timedelta(seconds=10))
    report = deliver_pending(seeded, now=t0 + dt.timedelta(seconds=40))
    assert report.failed == 1 and _row(seeded, run_id).state == "failed"
    with session_scope(seeded) as s:
        assert runs.get_run(s, run_id).status == "completed"  # the run never hears of it
        listed = list_exports(s, state="failed")
        assert [(r.run_id, r.attempts) for r in listed.data] == [(run_id, 3)]
        assert listed.states == {"pending": 0, "delivered": 0, "failed": 1}
        assert retry_failed(s, exporter="tensorboard") == 0
        assert retry_failed(s, run_id=run_id) == 1
    row = _row(seeded, run_id)
    assert (row.state, row.attempts) == ("pending", 0)


def test_checkpoint_registration_carries_the_training_run() -> None:
    from pydantic import ValidationError
    from vlmevals.catalogue.schemas.checkpoints import CheckpointEvent

    body = {"model": "m", "step": 5, "weights_path": "/w", "mlflow_run_id": "a" * 32, "tensorboard_dir": "/logs/run1"}
    body["wandb_run_path"] = "lab/pretrain-7b/r1x2y3"
    event = CheckpointEvent.model_validate(body)
    assert (event.mlflow_run_id, event.tensorboard_dir) == ("a" * 32, "/logs/run1")
    assert event.wandb_run_path == "lab/pretrain-7b/r1x2y3"
    with pytest.raises(ValidationError, match="wandb_run_path"):
        CheckpointEvent.model_validate({**body, "wandb_run_path": "r1x2y3"})  # entity/project/run_id
    with pytest.raises(ValidationError, match="mlflow_run_id"):
        CheckpointEvent.model_validate({**body, "mlflow_run_id": "x'; drop"})
    with pytest.raises(ValidationError, match="tensorboard_dir"):
        CheckpointEvent.model_validate({**body, "tensorboard_dir": "relative/logs"})
