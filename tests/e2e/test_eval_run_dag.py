"""The whole eval_run DAG (dag.test) with real VLMEvalKit subprocesses on the demo model and benchmark."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from vlmevals.db.engine import session_scope
from vlmevals.db.models import EvalRun, Task

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def eval_dag(airflow_db: str, eval_run_paused: None):
    """Parsed per test: dag.test() merges a run's conf into the DAG object's params."""
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(ROOT / "dags" / "eval_run.py")).dags["eval_run"]


def _run_for(engine, dag_run_id: str) -> EvalRun | None:
    with session_scope(engine) as s:
        run = s.scalar(select(EvalRun).where(EvalRun.dag_run_id == dag_run_id))
        if run is not None:
            _ = run.events, run.task, run.model
        return run


def test_demo_run_completes(eval_dag, seeded, demo_assets) -> None:
    dr = eval_dag.test(
        run_conf={"task": "demo-shapes-mcq", "model": "demo-tiny-idefics3", "triggered_by": "airflow_rest"}
    )
    run = _run_for(seeded, dr.run_id)
    assert run is not None, "queue recorded no eval run"
    assert run.status == "completed", run.error
    assert str(dr.state) == "success"
    assert [e.status for e in run.events] == ["queued", "running", "completed"]
    assert run.triggered_by == "airflow_rest" and run.dag_id == "eval_run"
    assert run.progress_total and run.progress_done == run.progress_total
    assert run.primary_metric is not None and 0.0 <= run.primary_metric <= 1.0
    table = run.metrics["table"]
    assert table["split=none|Overall"] == pytest.approx(run.primary_metric)
    assert any(k.startswith("split=none|") and k != "split=none|Overall" for k in table), "categories kept"
    assert run.vlmeval_version and run.vlmeval_version.startswith("ms-vlmeval==")
    art = Path(run.artifacts_dir)
    pred_root = art / run.model.vlmeval_model
    assert (art / "worker_stdout.log").stat().st_size > 0 and (art / "worker_stderr.log").exists()
    assert (pred_root / f"{run.model.vlmeval_model}_{run.task.vlmeval_data}.xlsx").exists()
    assert (pred_root / f"{run.model.vlmeval_model}_{run.task.vlmeval_data}_acc.csv").exists()
    assert (pred_root / "status.json").exists()


def test_unknown_model_fails_in_queue(eval_dag, seeded, demo_assets) -> None:
    dr = eval_dag.test(run_conf={"task": "demo-shapes-mcq", "model": "ghost"})
    assert str(dr.state) == "failed"
    assert _run_for(seeded, dr.run_id) is None, "no row for a model that does not exist"
    states = {ti.task_id: str(ti.state) for ti in dr.get_task_instances()}
    assert states["queue"] == "failed"
    assert states["inference"] in ("upstream_failed", "skipped", "None"), "no GPU slot was taken"


def test_adopting_a_finished_run_is_refused(eval_dag, seeded, demo_assets) -> None:
    from vlmevals.runs import lifecycle as runs

    with session_scope(seeded) as s:
        run_id = runs.create_run(s, "demo-shapes-mcq", "demo-tiny-idefics3", triggered_by="api").id
    with session_scope(seeded) as s:
        runs.mark_cancelled(s, run_id, "carol")
    dr = eval_dag.test(run_conf={"eval_run_id": run_id})
    assert str(dr.state) == "failed"
    with session_scope(seeded) as s:
        run = runs.get_run(s, run_id)
        assert (run.status, run.error, run.dag_run_id) == ("cancelled", "cancelled by carol", None)


def test_missing_dataset_fails_before_inference(eval_dag, seeded, demo_assets) -> None:
    with session_scope(seeded) as s:
        s.add(Task(name="absent", display_name="Absent", vlmeval_data="NOT_THERE_MCQ"))
    dr = eval_dag.test(run_conf={"task": "absent", "model": "demo-tiny-idefics3"})
    run = _run_for(seeded, dr.run_id)
    assert run is not None and run.status == "failed"
    assert "NOT_THERE_MCQ.tsv is missing" in run.error or "NOT_THERE_MCQ.tsv" in run.error
    assert "LMUData" in run.error
    assert run.started_at is None, "inference never started"
    assert [e.status for e in run.events] == ["queued", "failed"]


def test_vlmeval_failure_recorded_only_in_status_json(eval_dag, seeded, demo_assets) -> None:
    """VLMEvalKit exits 0 here; only status.json's error_message tells the run failed. The TSV passes our
    header check at `queue` (every column is there) but its image is no image ("hello" in base64)."""
    from vlmevals.core.settings import get_settings

    lmu = get_settings().lmu_data
    (lmu / "NO_IMAGE_MCQ.tsv").write_text("index\tquestion\tA\tB\tanswer\timage\n0\tWhich?\tx\ty\tA\taGVsbG8=\n")
    with session_scope(seeded) as s:
        s.add(
            Task(
                name="no-image",
                display_name="No image",
                vlmeval_data="NO_IMAGE_MCQ",
                vlmeval_dataset_class="CustomMCQDataset",
            )
        )
    dr = eval_dag.test(run_conf={"task": "no-image", "model": "demo-tiny-idefics3"})
    run = _run_for(seeded, dr.run_id)
    assert run is not None and run.status == "failed", run.status
    assert run.error.startswith("inference: VLMEvalKit inference failed for DemoTinyIdefics3 x NO_IMAGE_MCQ")
    assert "recorded an error" in run.error and "worker_stderr.log" in run.error  # where to look
    art = Path(run.artifacts_dir)
    assert (art / "worker_stdout.log").exists() and (art / "DemoTinyIdefics3" / "status.json").exists(), "kept"
    assert run.attempts == 1, "a failure VLMEvalKit recorded itself is not retried"
    assert [e.status for e in run.events][-1] == "failed"


@pytest.mark.parametrize("task_name, scale", [("demo-colors-vqa", 100.0), ("demo-shapes-yorn", 100.0)])
def test_vqa_and_yes_no_tasks_complete(eval_dag, seeded, demo_assets, task_name: str, scale: float) -> None:
    dr = eval_dag.test(run_conf={"task": task_name, "model": "demo-tiny-idefics3"})
    run = _run_for(seeded, dr.run_id)
    assert run is not None and run.status == "completed", run.error if run else None
    assert run.metrics["file"].endswith(run.task.primary_metric_suffix)
    assert 0.0 <= run.primary_metric <= scale and run.metrics["table"]["Overall"] == run.primary_metric
