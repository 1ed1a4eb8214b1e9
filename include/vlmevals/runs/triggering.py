"""Starting and cancelling evaluations from the evals API (inside the Airflow api-server).

Trigger: the run row is created `queued` (or, when the pair already has an active run and force is off, the
database's one-active-run index refuses it and the active run is returned as a conflict), committed, and only
then an `eval_run` DAG run is created with `{"eval_run_id": id}` in its conf, so the DAG never sees a row that
does not exist yet; if Airflow refuses the DAG run, the row is marked failed with Airflow's reason (nothing is
left queued forever). The DAG run id is unique by construction, so creating it needs no lock either.

Cancel: the row goes to `cancelled` first (so no late callback can overwrite it), then the DAG run is set to
failed the way Airflow's own `PATCH .../dagRuns/{id}` does, which makes the scheduler kill the running task;
the task's SIGTERM handler kills VLMEvalKit's process group. Both Airflow calls live in `vlmevals.airflow.dag_runs`.

Both take an Engine and own their transactions: the row must be committed before Airflow is called (and a
refusal recorded in a transaction of its own), which no caller's single transaction could give.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from vlmevals.airflow import dag_runs
from vlmevals.airflow.dag_runs import AirflowTriggerError
from vlmevals.core.constants import EVAL_RUN_DAG_ID
from vlmevals.core.errors import ConflictError, EvalsError
from vlmevals.core.vocabulary import ACTIVE_STATUSES, TriggeredBy
from vlmevals.db.engine import session_scope
from vlmevals.runs import lifecycle as runs

log = logging.getLogger(__name__)


@dataclass
class Triggered:
    run_id: int
    dag_run_id: str


def dag_run_id_for(run_id: int, at: dt.datetime | None = None) -> str:
    """Readable and unique even if our ids restart (a reset database) while Airflow's history stays."""
    at = at or dt.datetime.now(dt.UTC)
    return f"evals_api__{run_id}__{at.strftime('%Y%m%dT%H%M%S')}_{secrets.token_hex(3)}"


def trigger(
    engine: Engine,
    task_name: str,
    model_name: str,
    *,
    user: str | None,
    options: dict[str, Any] | None = None,
    force: bool = False,
) -> Triggered:
    """Create the eval run row and its DAG run; ConflictError(existing_id) if the pair is already active."""
    with session_scope(engine) as s:
        # the one-active-run index decides between concurrent triggers of the pair (any path): no lock needed
        run = runs.create_run(
            s,
            task_name,
            model_name,
            triggered_by=TriggeredBy.API,
            user=user,
            options=options,
            dag_id=EVAL_RUN_DAG_ID,
            forced=force,
        )
        runs.bind_dag_run(run, EVAL_RUN_DAG_ID, dag_run_id_for(run.id))
        run_id, dag_run_id = run.id, str(run.dag_run_id)
        conf = {"eval_run_id": run_id, "task": run.task.name, "model": run.model.name, "triggered_by": TriggeredBy.API}
    return start_dag_run(engine, run_id, dag_run_id, conf, user)


def start_dag_run(engine: Engine, run_id: int, dag_run_id: str, conf: dict[str, Any], user: str | None) -> Triggered:
    """The committed run's `eval_run` DAG run; if Airflow refuses it, the row is marked failed with the reason."""
    try:
        got = dag_runs.create_dag_run(dag_run_id, conf, user)
    except Exception as err:
        with session_scope(engine) as s:
            runs.mark_failed(s, run_id, f"could not start the Airflow DAG run: {err}")
        if isinstance(err, EvalsError):
            raise
        raise AirflowTriggerError(f"could not start the Airflow DAG run: {err}") from err
    return Triggered(run_id, got)


def cancel(engine: Engine, run_id: int, *, user: str | None) -> bool:
    """Cancel a queued or running eval run; ConflictError if it is already over. True if a DAG run was stopped."""
    with session_scope(engine) as s:
        run = runs.get_run(s, run_id)
        status, dag_id, dag_run_id = run.status, run.dag_id, run.dag_run_id
        cancelled = status in ACTIVE_STATUSES and runs.mark_cancelled(s, run_id, user=user)
        if not cancelled:  # another writer ended it meanwhile: say what it is now
            s.refresh(run)
            status = run.status
    if not cancelled:
        raise ConflictError(
            f"eval run {run_id} is already {status}; only queued or running runs can be cancelled", existing_id=run_id
        )
    if not dag_run_id:
        return False
    try:
        return dag_runs.fail_dag_run(dag_id or EVAL_RUN_DAG_ID, dag_run_id)
    except Exception:  # the row is cancelled either way; the DAG's own tasks then stop at their next check
        log.exception("could not fail DAG run %s of eval run %s", dag_run_id, run_id)
        return False
