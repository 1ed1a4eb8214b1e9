"""The steps of one evaluation, called by the `eval_run` DAG's tasks (which only wire them up).

queue -> inference -> scoring -> ingest_metrics, plus a teardown that guarantees a terminal state. Each step
lives in its own module; this one is the surface the DAG (and the fault tests) import.
"""

from __future__ import annotations

from sqlalchemy import Engine

from vlmevals.pipeline.context import RunContext, load_context
from vlmevals.pipeline.inference import inference_mode, inference_step, record_fingerprint
from vlmevals.pipeline.queue import queue_step
from vlmevals.pipeline.scoring import ingest_step, scoring_step
from vlmevals.runs import lifecycle as runs

__all__ = [
    "RunContext",
    "finalize_step",
    "inference_mode",
    "inference_step",
    "ingest_step",
    "load_context",
    "queue_step",
    "record_fingerprint",
    "record_task_failure",
    "scoring_step",
]


def finalize_step(engine: Engine | None, run_id: int | None, dag_run_id: str) -> str:
    """Teardown: no run may stay queued or running once its DAG run is over."""
    if run_id is None:
        return "no eval run was recorded"
    failed = runs.mark_failed(
        engine,
        run_id,
        f"the eval_run DAG run {dag_run_id} ended before ingest_metrics recorded a result; see the Airflow task logs",
    )
    return "marked failed" if failed else "already final"


def record_task_failure(
    engine: Engine | None,
    run_id: int | None,
    task_id: str,
    error: BaseException | str | None,
) -> None:
    if run_id is None:
        return
    runs.mark_failed(engine, run_id, f"{task_id}: {error or 'failed (see the task log)'}")
