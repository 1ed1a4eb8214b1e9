"""The steps of one evaluation, called by the `eval_run` DAG's tasks (which only wire them up).

queue -> inference -> scoring -> ingest_metrics, plus a teardown that guarantees a terminal state. Each step
lives in its own module; this one is the surface the DAG (and the fault tests) import.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Engine

from vlmevals.core.vocabulary import ACTIVE_STATUSES, RunStatus
from vlmevals.db.engine import session_scope
from vlmevals.gpu.leases import release_run
from vlmevals.pipeline.context import RunContext, load_context
from vlmevals.pipeline.inference import inference_mode, inference_step, record_fingerprint, served_inference_step
from vlmevals.pipeline.ingest import ingest_step
from vlmevals.pipeline.operator_actions import StateChange
from vlmevals.pipeline.queue import queue_step
from vlmevals.pipeline.scoring import scoring_step
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
    "served_inference_step",
]


def _status(engine: Engine, run_id: int) -> str:
    with session_scope(engine) as s:
        return runs.get_run(s, run_id).status


def finalize_step(
    engine: Engine,
    run_id: int | None,
    dag_run_id: str,
    who_changed: Callable[[], StateChange | None] | None = None,
) -> str:
    """Teardown: no run may stay queued or running once its DAG run is over; returns the run's final status.

    A run still active here never got a result. `who_changed` looks up an operator's "Mark failed/success" in
    Airflow (its audit log; asked only for such a run, so a finished run pays no API call): "success" then
    means "stop, this one is done with": the run is `cancelled` (never `completed` without metrics); anything
    else, `failed`, naming who did it and when.
    """
    if run_id is None:
        return RunStatus.FAILED
    release_run(engine, run_id)  # before the run is final: a final run holds no GPU
    if _status(engine, run_id) in ACTIVE_STATUSES:
        ended = f"the eval_run DAG run {dag_run_id} ended before ingest_metrics recorded a result"
        change = who_changed() if who_changed else None
        with session_scope(engine) as s:
            if change is not None and change.state == "success":
                runs.mark_cancelled(s, run_id, reason=f"cancelled: {change.describe()} before a result")
            elif change is not None:
                runs.mark_failed(s, run_id, f"{ended}: {change.describe()}")
            else:
                runs.mark_failed(s, run_id, f"{ended}; see the Airflow task logs")
    return _status(engine, run_id)


def record_task_failure(
    engine: Engine,
    run_id: int | None,
    task_id: str,
    error: BaseException | str | None,
) -> None:
    if run_id is None:
        return
    with session_scope(engine) as s:
        runs.mark_failed(s, run_id, f"{task_id}: {error or 'failed (see the task log)'}")
