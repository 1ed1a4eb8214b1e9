"""Delivery to TensorBoard event files, read back with tensorboard's own EventAccumulator."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import update
from vlmevals.core.settings import get_settings
from vlmevals.db.engine import session_scope
from vlmevals.db.models import ExportOutbox
from vlmevals.exports.delivery import deliver_pending
from vlmevals.runs import lifecycle as runs

from tests.vlmevals.exports.runs_data import MODEL, SUITE_MODEL, TASK, checkpoint, completed, failed

pytestmark = pytest.mark.integration


@pytest.fixture()
def tb_dir(exporting: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("EVALS_EXPORTERS", "tensorboard")
    get_settings.cache_clear()
    return exporting


def _scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder))
    acc.Reload()
    return {tag: [(e.step, round(e.value, 6)) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def test_checkpoint_scores_at_their_steps_delivered_twice_written_once(seeded, tb_dir: Path) -> None:
    for step, score in ((100, 0.3), (200, 0.5), (300, 0.7)):
        completed(seeded, score=score, checkpoint_id=checkpoint(seeded, step))
    assert deliver_pending(seeded).delivered == 3
    curve = tb_dir / "checkpoints" / MODEL / "-"
    got = _scalars(curve)
    assert sorted(got[f"eval/{TASK}"]) == [(100, 0.3), (200, 0.5), (300, 0.7)]
    assert sorted(got[f"eval/{TASK}/category/split_dev_circle"]) == [(100, 0.5), (200, 0.5), (300, 0.5)]
    assert sorted(s for s, _ in got[f"eval/{TASK}/samples_failed"]) == [100, 200, 300]
    with session_scope(seeded) as s:
        s.execute(update(ExportOutbox).values(state="pending", next_attempt_at=dt.datetime.now(dt.UTC)))
    assert deliver_pending(seeded).delivered == 3
    assert len(_scalars(curve)[f"eval/{TASK}"]) == 3
    assert len(list(curve.glob("events.out.tfevents.*"))) == 3  # one file per eval run


def test_plain_and_failed_runs(seeded, tb_dir: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ok, bad = completed(seeded, score=0.6), failed(seeded, "judge unreachable")
    assert deliver_pending(seeded).delivered == 2
    folder = tb_dir / "runs" / TASK / MODEL
    assert _scalars(folder)[f"eval/{TASK}"] == [(ok, 0.6)]  # step = our run id
    acc = EventAccumulator(str(folder), size_guidance={"tensors": 0})
    acc.Reload()
    texts = {e.step: e.tensor_proto.string_val[0].decode() for e in acc.Tensors(f"eval/{TASK}/run/text_summary")}
    assert "judge unreachable" in texts[bad] and f"vlmevals.run_id: {ok}" in texts[ok]


def test_checkpoints_with_a_training_log_dir_land_beside_its_loss(seeded, tb_dir: Path, tmp_path: Path) -> None:
    from torch.utils.tensorboard import SummaryWriter

    training = tmp_path / "train-logs"
    writer = SummaryWriter(str(training))
    for step in (100, 200):
        writer.add_scalar("loss", 3.0 - step / 100, step)
        completed(seeded, score=step / 1000, checkpoint_id=checkpoint(seeded, step, tensorboard_dir=str(training)))
    writer.close()
    assert deliver_pending(seeded).delivered == 2
    got = _scalars(training)
    assert sorted(got[f"eval/{TASK}"]) == [(100, 0.1), (200, 0.2)]
    assert [s for s, _ in got["loss"]] == [100, 200]
    assert not (tb_dir / "checkpoints").exists()


def test_suite_average_once_complete_and_a_late_verdict_rewrites_the_runs_file(seeded, tb_dir: Path) -> None:
    scores = {"demo-shapes-mcq": 0.5, "demo-colors-vqa": 40.0, "demo-shapes-yorn": 70.0}  # scales 1, 100, 100
    cp = checkpoint(seeded, 100, model_name=SUITE_MODEL)
    ids = {t: completed(seeded, score=v, checkpoint_id=cp, task=t, model=SUITE_MODEL) for t, v in scores.items()}
    cp2 = checkpoint(seeded, 200, model_name=SUITE_MODEL)
    completed(seeded, score=0.9, checkpoint_id=cp2, task="demo-shapes-mcq", model=SUITE_MODEL)
    assert deliver_pending(seeded).delivered == 4
    curve = tb_dir / "checkpoints" / SUITE_MODEL / "demo"
    got = _scalars(curve)
    assert got["eval/average"] == [(100, pytest.approx((50.0 + 40.0 + 70.0) / 3, abs=1e-4))]  # 200 lacks two tasks
    assert "eval/demo-colors-vqa/regression" not in got  # no verdict yet
    late = ids["demo-colors-vqa"]
    with session_scope(seeded) as s:
        runs.record_regression(s, late, regression=True, detail={"method": "test"}, baseline_run_id=late)
    assert deliver_pending(seeded).delivered == 1
    got = _scalars(curve)
    assert got["eval/demo-colors-vqa/regression"] == [(100, 1.0)]
    assert got["eval/demo-colors-vqa"] == [(100, 40.0)] and len(got["eval/average"]) == 1
