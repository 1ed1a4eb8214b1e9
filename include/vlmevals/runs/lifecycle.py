"""Eval-run rows and their life cycle: queued -> running -> completed | failed (| cancelled).

Transitions only leave active states, so a late failure callback cannot overwrite a cancelled or completed
run, and every writer goes through these functions.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from vlmevals.catalogue.schemas import RunOptions
from vlmevals.catalogue.store import get_model, get_task
from vlmevals.core.errors import InvalidRequestError, NotFoundError
from vlmevals.core.settings import get_settings
from vlmevals.db.engine import session_scope
from vlmevals.db.models import ACTIVE_STATUSES, TRIGGER_SOURCES, EvalRun, EvalRunEvent

MAX_ERROR_CHARS = 8000


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def artifacts_dir_for(run_id: int) -> str:
    return str(get_settings().outputs_dir / "runs" / str(run_id))


def fresh_artifacts_dir(run_id: int) -> str:
    """`runs/{id}`, unless a folder of that name holds another run's files (ids restart when a database is
    recreated): a new run must never resume from, or overwrite, someone else's artifacts."""
    path = Path(artifacts_dir_for(run_id))
    if path.exists() and any(path.iterdir()):
        path = path.with_name(f"{run_id}-{now():%Y%m%dT%H%M%S%f}")
    return str(path)


def create_run(
    session: Session,
    task_name: str,
    model_name: str,
    *,
    triggered_by: str,
    user: str | None = None,
    options: dict[str, Any] | None = None,
    dag_id: str | None = None,
    dag_run_id: str | None = None,
) -> EvalRun:
    if triggered_by not in TRIGGER_SOURCES:
        raise InvalidRequestError(f"triggered_by must be one of {', '.join(TRIGGER_SOURCES)}")
    task = get_task(session, task_name)
    model = get_model(session, model_name)
    opts = RunOptions.model_validate(options or {}).model_dump(exclude_none=True)
    run = EvalRun(
        task=task,
        model=model,
        status="queued",
        triggered_by=triggered_by,
        triggered_by_user=user,
        options=opts,
        dag_id=dag_id,
        dag_run_id=dag_run_id,
    )
    session.add(run)
    session.flush()
    run.artifacts_dir = fresh_artifacts_dir(run.id)
    session.add(
        EvalRunEvent(
            run_id=run.id, status="queued", message=f"triggered by {triggered_by}" + (f" ({user})" if user else "")
        )
    )
    session.flush()
    return run


def get_run(session: Session, run_id: int) -> EvalRun:
    run = session.get(EvalRun, run_id)
    if run is None:
        raise NotFoundError(f"no eval run with id {run_id}")
    return run


def find_active_run(session: Session, task_id: int, model_id: int) -> EvalRun | None:
    return session.scalar(
        select(EvalRun)
        .where(EvalRun.task_id == task_id, EvalRun.model_id == model_id, EvalRun.status.in_(ACTIVE_STATUSES))
        .order_by(EvalRun.id)
        .limit(1)
    )


def adopt_run(session: Session, run_id: int, *, dag_id: str, dag_run_id: str) -> EvalRun:
    """Bind a run created outside Airflow (plugin, schedule) to the DAG run that executes it."""
    run = get_run(session, run_id)
    if run.dag_run_id not in (None, dag_run_id):
        raise InvalidRequestError(
            f"eval run {run_id} already belongs to DAG run {run.dag_run_id!r}; trigger without eval_run_id "
            "to start a new evaluation"
        )
    if run.status not in ACTIVE_STATUSES:
        raise InvalidRequestError(f"eval run {run_id} is {run.status}; it cannot be run again")
    run.dag_id, run.dag_run_id = dag_id, dag_run_id
    return run


def _transition(
    engine: Engine | None,
    run_id: int,
    values: dict[str, Any],
    from_statuses: tuple[str, ...] = ACTIVE_STATUSES,
    message: str | None = None,
) -> bool:
    with session_scope(engine) as s:
        res = s.execute(update(EvalRun).where(EvalRun.id == run_id, EvalRun.status.in_(from_statuses)).values(**values))
        changed = res.rowcount == 1  # type: ignore[attr-defined]
        if changed and "status" in values:
            s.add(EvalRunEvent(run_id=run_id, status=values["status"], message=message or values.get("error")))
        return changed


def mark_running(engine: Engine | None, run_id: int, attempt: int) -> bool:
    with session_scope(engine) as s:
        run = get_run(s, run_id)
        if run.status not in ACTIVE_STATUSES:
            return False
        run.status = "running"
        run.started_at = run.started_at or now()
        run.attempts = max(run.attempts, attempt)
        run.error = None
        s.add(EvalRunEvent(run_id=run_id, status="running", message=f"inference attempt {attempt}"))
        return True


def set_progress(engine: Engine | None, run_id: int, done: int, total: int | None) -> None:
    if total is not None:
        done = min(done, total)
    _transition(engine, run_id, {"progress_done": done, "progress_total": total})


def mark_completed(
    engine: Engine | None,
    run_id: int,
    *,
    primary_metric: float | None,
    metrics: dict[str, Any],
    extra: dict[str, Any] | None = None,
) -> bool:
    values = {
        "status": "completed",
        "finished_at": now(),
        "primary_metric": primary_metric,
        "metrics": metrics,
        "error": None,
        **(extra or {}),
    }
    return _transition(engine, run_id, values, message=f"primary metric {primary_metric}")


def mark_failed(engine: Engine | None, run_id: int, error: str) -> bool:
    error = error.strip() or "failed without a message (see the Airflow task log)"
    if len(error) > MAX_ERROR_CHARS:
        error = error[:MAX_ERROR_CHARS] + " …[truncated]"
    return _transition(engine, run_id, {"status": "failed", "finished_at": now(), "error": error})


def mark_cancelled(engine: Engine | None, run_id: int, user: str | None = None) -> bool:
    who = f" by {user}" if user else ""
    return _transition(engine, run_id, {"status": "cancelled", "finished_at": now(), "error": f"cancelled{who}"})


def record_regression(
    session: Session, run_id: int, *, regression: bool, detail: dict[str, Any], baseline_run_id: int
) -> None:
    """Store a regression verdict on a run (decided by vlmevals.results.regression)."""
    session.execute(
        update(EvalRun)
        .where(EvalRun.id == run_id)
        .values(regression=regression, regression_detail=detail, baseline_run_id=baseline_run_id)
    )
