"""Evaluating a model on a suite: one eval run per task of the suite.

The per-pair duplicate rule applies per task: a task whose (task, model) pair already has a queued or running
run is reported as already active and left alone, the others are started. From the API each task goes through
`triggering.trigger` (row, then DAG run); from the `eval_suite` DAG the rows are created here and the DAG
fans out one `eval_run` DAG run per row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from vlmevals.catalogue.store import get_model, get_task
from vlmevals.catalogue.suites import get_suite
from vlmevals.core.constants import EVAL_RUN_DAG_ID
from vlmevals.core.errors import ConflictError, EvalsError
from vlmevals.core.vocabulary import TriggeredBy
from vlmevals.db.engine import session_scope
from vlmevals.runs import lifecycle as runs
from vlmevals.runs import triggering


@dataclass
class SuiteTrigger:
    """What a suite trigger did, task by task."""

    suite: str
    model: str
    started: list[dict[str, Any]] = field(default_factory=list)  # {task, run_id, dag_run_id}
    already_active: list[dict[str, Any]] = field(default_factory=list)  # {task, run_id, status}
    failed: list[dict[str, Any]] = field(default_factory=list)  # {task, error}


def suite_task_names(session: Session, suite_name: str, model_name: str) -> list[str]:
    """The suite's task names in order; NotFoundError for an unknown suite or model."""
    get_model(session, model_name)
    return [m.task.name for m in get_suite(session, suite_name).members]


def trigger_suite(
    engine: Engine,
    suite_name: str,
    model_name: str,
    *,
    user: str | None,
    options: dict[str, Any] | None = None,
    force: bool = False,
) -> SuiteTrigger:
    """Start one eval run (row + DAG run) per task of the suite, through the single-run trigger (which owns its
    transactions: each row is committed before its DAG run is created)."""
    out = SuiteTrigger(suite_name, model_name)
    with session_scope(engine) as s:
        names = suite_task_names(s, suite_name, model_name)
    for task in names:
        try:
            got = triggering.trigger(engine, task, model_name, user=user, options=options, force=force)
        except ConflictError as err:
            status = _status(engine, err.existing_id)
            out.already_active.append({"task": task, "run_id": err.existing_id, "status": status})
        except EvalsError as err:  # e.g. Airflow refused the DAG run: the row is already marked failed
            out.failed.append({"task": task, "error": str(err)})
        else:
            out.started.append({"task": task, "run_id": got.run_id, "dag_run_id": got.dag_run_id})
    return out


def _status(engine: Engine, run_id: int | None) -> str | None:
    if run_id is None:
        return None
    with session_scope(engine) as s:
        return runs.get_run(s, run_id).status


def queue_task_run(
    s: Session,
    task_name: str,
    model_name: str,
    out: SuiteTrigger,
    *,
    dag_run_id_for: Callable[[int], str],
    triggered_by: str,
    user: str | None,
    checkpoint_id: int | None = None,
    options: dict[str, Any] | None = None,
) -> dict[str, Any] | None:
    """In the caller's transaction: a queued row for one task of a suite (of the model at `checkpoint_id`),
    bound to the `eval_run` DAG run id it will get, unless the pair is already active (recorded in `out`).
    Returns the TriggerDagRunOperator kwargs of the new row, or None."""
    task, model = get_task(s, task_name), get_model(s, model_name)
    s.execute(select(func.pg_advisory_xact_lock(task.id, model.id)))  # the same lock as triggering
    active = runs.find_active_run(s, task.id, model.id, checkpoint_id)
    if active is not None:
        out.already_active.append({"task": task_name, "run_id": active.id, "status": active.status})
        return None
    run = runs.create_run(
        s,
        task_name,
        model_name,
        triggered_by=triggered_by,
        user=user,
        options=options,
        dag_id=EVAL_RUN_DAG_ID,
        checkpoint_id=checkpoint_id,
        batched=True,
    )
    run.dag_run_id = dag_run_id_for(run.id)
    out.started.append({"task": task_name, "run_id": run.id, "dag_run_id": run.dag_run_id})
    return {"conf": {"eval_run_id": run.id, "triggered_by": triggered_by}, "trigger_run_id": run.dag_run_id}


def child_run_ids(prefix: str, parent_run_id: str) -> Callable[[int], str]:
    """`{prefix}__{parent}__{run id}`: the DAG run ids a fan-out DAG gives the eval runs it starts."""
    safe = "".join(c if c.isalnum() or c in "-_.:+" else "_" for c in parent_run_id)[:150]
    return lambda run_id: f"{prefix}__{safe}__{run_id}"


def create_suite_runs(
    session: Session,
    suite_name: str,
    model_name: str,
    *,
    parent_run_id: str,
    triggered_by: str = TriggeredBy.SUITE,
    user: str | None = None,
) -> tuple[list[dict[str, Any]], SuiteTrigger]:
    """The `eval_suite` DAG's first step, in the caller's transaction: a queued row per task not already active,
    bound to the `eval_run` DAG run id it will get; returns the TriggerDagRunOperator kwargs and what was done."""
    out = SuiteTrigger(suite_name, model_name)
    kwargs: list[dict[str, Any]] = []
    run_ids = child_run_ids("suite", parent_run_id)
    for task_name in suite_task_names(session, suite_name, model_name):
        got = queue_task_run(
            session, task_name, model_name, out, dag_run_id_for=run_ids, triggered_by=triggered_by, user=user
        )
        if got is not None:
            kwargs.append(got)
    return kwargs, out
