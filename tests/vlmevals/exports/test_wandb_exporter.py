"""Delivery to W&B in offline mode (WANDB_MODE=offline: the real client and its wandb-core process write run
folders), read back from each folder's transaction log with wandb's own protobuf Record (wandb_log.py).

Not checked here (no W&B server): the upload (`wandb sync`), and the online-only dedup of a curve's rows (the
summary marker read back from a resumed run)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, update
from vlmevals.core.settings import get_settings
from vlmevals.db.engine import session_scope
from vlmevals.db.models import ExportOutbox
from vlmevals.exports.delivery import deliver_pending
from vlmevals.exports.wandb_exporter import CHECKPOINT_AXIS
from vlmevals.runs import lifecycle as runs

from tests.vlmevals.exports.runs_data import (
    METRIC_FILE,
    MODEL,
    SUITE_MODEL,
    TASK,
    checkpoint,
    completed,
    failed,
)
from tests.vlmevals.exports.wandb_log import OfflineRun, runs_by_id

pytestmark = pytest.mark.integration


@pytest.fixture()
def wandb_dir(exporting: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    import wandb

    folder = tmp_path / "wb"
    monkeypatch.setenv("EVALS_EXPORTERS", "wandb")
    monkeypatch.setenv("EVALS_WANDB_MODE", "offline")
    monkeypatch.setenv("EVALS_WANDB_PROJECT", "evals-test")
    monkeypatch.setenv("EVALS_WANDB_ENTITY", "lab")
    monkeypatch.setenv("EVALS_WANDB_DIR", str(folder))
    monkeypatch.setenv("WANDB_SILENT", "true")
    get_settings.cache_clear()
    yield folder
    wandb.teardown()  # the wandb-core service this process started


def _ref(engine, run_id: int) -> str:
    with session_scope(engine) as s:
        row = s.scalar(select(ExportOutbox).where(ExportOutbox.run_id == run_id))
        assert row is not None and row.state == "delivered", row and (row.state, row.last_error)
        return row.tracker_ref or ""


def _one(found: dict[str, list[OfflineRun]], run_id: str) -> OfflineRun:
    [got] = found[run_id]
    return got


def test_completed_and_failed_runs_land_with_config_summary_and_files(seeded, wandb_dir: Path) -> None:
    ok, bad = completed(seeded, score=0.6), failed(seeded, "judge unreachable")
    assert deliver_pending(seeded).delivered == 2
    found = runs_by_id(wandb_dir)
    with session_scope(seeded) as s:
        created = {r: str(int(runs.get_run(s, r).created_at.timestamp() * 1000)) for r in (ok, bad)}
    good = _one(found, f"vlmevals-{ok}-{created[ok]}")
    assert (good.entity, good.project, good.group, good.job_type) == ("lab", "evals-test", TASK, "eval")
    assert _ref(seeded, ok).startswith(f"lab/evals-test/vlmevals-{ok}-{created[ok]} ")
    assert (good.config["task"], good.config["model"], good.config["vlmevals.run_id"]) == (TASK, MODEL, ok)
    assert good.config["vlmevals.link"].endswith(f"/api/evals/ui/leaderboard?task={TASK}&run={ok}")
    summary = good.summary
    assert summary["primary_metric"] == 0.6 and summary["samples_total"] == 10 and summary["samples_failed"] == 1
    assert summary["ci_low"] == pytest.approx(0.4) and summary["category/split_dev_square"] == 0.7
    assert "regression" not in summary  # no verdict: not a "no regression"
    assert good.exit_code == 0 and set(good.tags) == {TASK, "completed"}
    assert {"vlmevals_result.json", METRIC_FILE} <= set(good.files)
    broken = _one(found, f"vlmevals-{bad}-{created[bad]}")
    assert broken.exit_code == 1 and broken.summary["error"] == "judge unreachable"
    assert "primary_metric" not in broken.summary


def test_checkpoints_make_one_curve_against_checkpoint_step(seeded, wandb_dir: Path) -> None:
    for step, score in ((200, 0.5), (100, 0.3), (300, 0.7)):  # out of order, as checkpoints may be scored
        completed(seeded, score=score, checkpoint_id=checkpoint(seeded, step))
    assert deliver_pending(seeded).delivered == 3
    found = runs_by_id(wandb_dir)
    [series_id] = [k for k in found if k.startswith(f"vlmevals-ckpt-{MODEL}-")]
    parts = found[series_id]
    assert len(parts) == 3  # one offline folder per delivery: the same W&B run resumed (synced into one run)
    rows = [row for p in parts for row in p.history]
    assert sorted((r[CHECKPOINT_AXIS], r[f"eval/{TASK}"]) for r in rows) == [(100, 0.3), (200, 0.5), (300, 0.7)]
    assert all(p.step_metrics == {"eval/*": CHECKPOINT_AXIS} for p in parts)
    assert {r[f"eval/{TASK}/category/split_dev_circle"] for r in rows} == {0.5}
    assert all("eval/average" not in r for r in rows)  # the model has no suite


def test_training_run_gets_eval_scores_and_the_suite_average(seeded, wandb_dir: Path) -> None:
    """A training job's own W&B run (wandb_run_path): the eval rows go into it against checkpoint_step; the
    average of the suite `demo` once its three tasks have a score at that step."""
    import wandb

    training = wandb.init(
        id="pretrain-7b", project="pretrain", entity="lab", mode="offline", dir=str(wandb_dir), reinit="create_new"
    )
    for step in range(3):
        training.log({"loss": 3.0 - step})
    training.finish()
    cp = checkpoint(seeded, 100, model_name=SUITE_MODEL, wandb_run_path="lab/pretrain/pretrain-7b")
    scores = {"demo-shapes-mcq": 0.5, "demo-colors-vqa": 40.0, "demo-shapes-yorn": 70.0}  # scales 1, 100, 100
    for task, score in list(scores.items())[:2]:
        completed(seeded, score=score, checkpoint_id=cp, task=task, model=SUITE_MODEL)
    assert deliver_pending(seeded).delivered == 2
    completed(seeded, score=scores["demo-shapes-yorn"], checkpoint_id=cp, task="demo-shapes-yorn", model=SUITE_MODEL)
    assert deliver_pending(seeded).delivered == 1
    parts = runs_by_id(wandb_dir)["pretrain-7b"]
    assert [p.project for p in parts] == ["pretrain"] * 4 and not parts[0].resume and all(p.resume for p in parts[1:])
    assert [r["loss"] for r in parts[0].history] == [3.0, 2.0, 1.0]
    evals = [row for p in parts[1:] for row in p.history]
    assert {
        (r[CHECKPOINT_AXIS], k, r[k]) for r in evals for k in r if k.startswith("eval/demo") and k.count("/") == 1
    } == {(100, f"eval/{t}", v) for t, v in scores.items()}
    averages = [r["eval/average"] for r in evals if "eval/average" in r]
    assert averages == [pytest.approx((50.0 + 40.0 + 70.0) / 3)]  # logged once: when the last task arrived
    assert all(not p.name for p in parts[1:])  # the training run keeps its own name


def test_a_late_verdict_updates_the_same_run(seeded, wandb_dir: Path) -> None:
    run_id = completed(seeded, score=0.4)
    assert deliver_pending(seeded).delivered == 1
    with session_scope(seeded) as s:
        runs.record_regression(s, run_id, regression=True, detail={"method": "test"}, baseline_run_id=run_id)
    with session_scope(seeded) as s:
        row = s.scalar(select(ExportOutbox).where(ExportOutbox.run_id == run_id))
        assert row is not None and (row.state, row.attempts) == ("pending", 0)
    assert deliver_pending(seeded).delivered == 1
    [(wb_id, parts)] = runs_by_id(wandb_dir).items()  # one W&B run, resumed
    assert wb_id.startswith(f"vlmevals-{run_id}-") and len(parts) == 2 and all(p.resume for p in parts)
    assert "regression" not in parts[0].summary
    assert parts[1].summary["regression"] == 1.0 and parts[1].summary["primary_metric"] == 0.4
    assert "regression" in parts[1].tags
    with session_scope(seeded) as s:  # the same verdict again: nothing to send
        runs.record_regression(s, run_id, regression=True, detail={"method": "test"}, baseline_run_id=run_id)
        s.execute(update(ExportOutbox).values(next_attempt_at=dt.datetime.now(dt.UTC)))
    assert deliver_pending(seeded).delivered == 0
