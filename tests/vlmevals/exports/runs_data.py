"""Eval runs finished through the life cycle (the outbox rows come from there), with a metric file on disk.

Each transition runs in a unit of work of its own, as the pipeline's steps own theirs."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, select
from vlmevals.core.vocabulary import TriggeredBy
from vlmevals.db.engine import session_scope
from vlmevals.db.models import Checkpoint, Model
from vlmevals.runs import lifecycle as runs

TASK, MODEL = "demo-shapes-mcq", "demo-tiny-idefics3"
SUITE_MODEL = "demo-tiny-idefics3-trained"  # seeded with the suite `demo` (three tasks)
TABLE = {"split=dev|Overall": 0.6, "split=dev|circle": 0.5, "split=dev|square": 0.7}
METRIC_FILE = "demo-tiny-idefics3_demo-shapes-mcq_acc.csv"
VIA = TriggeredBy.AIRFLOW_REST


def checkpoint(engine: Engine, step: int, model_name: str = MODEL, **trackers: str) -> int:
    """A checkpoint of a model; `trackers`: mlflow_run_id, tensorboard_dir, wandb_run_path of its training run."""
    with session_scope(engine) as s:
        model = s.scalar(select(Model).where(Model.name == model_name))
        assert model is not None
        c = Checkpoint(model_id=model.id, step=step, weights_path=f"/ckpt/{step}", **trackers)
        s.add(c)
        s.flush()
        return c.id


def completed(
    engine: Engine, score: float = 0.6, checkpoint_id: int | None = None, task: str = TASK, model: str = MODEL
) -> int:
    with session_scope(engine) as s:
        run = runs.create_run(s, task, model, triggered_by=VIA, checkpoint_id=checkpoint_id, forced=True)
        run_id, folder = run.id, Path(run.artifacts_dir or "") / run.model.vlmeval_model
    folder.mkdir(parents=True, exist_ok=True)
    (folder / METRIC_FILE).write_text("split,Overall,circle,square\ndev,0.6,0.5,0.7\n")
    with session_scope(engine) as s:
        assert runs.mark_running(s, run_id, attempt=1)
    extra = {"samples_total": 10, "samples_failed": 1, "ci_low": score - 0.2, "ci_high": score + 0.2}
    table = {**TABLE, "split=dev|Overall": score}
    with session_scope(engine) as s:
        stored = runs.mark_completed(
            s, run_id, primary_metric=score, metrics={"table": table, "file": METRIC_FILE}, extra=extra
        )
    assert stored
    return run_id


def failed(engine: Engine, error: str = "VLMEvalKit reported a failure: CUDA out of memory") -> int:
    with session_scope(engine) as s:
        run_id = runs.create_run(s, TASK, MODEL, triggered_by=VIA, forced=True).id
    with session_scope(engine) as s:
        assert runs.mark_failed(s, run_id, error)
    return run_id
