"""Eval-run rows and their life cycle: queued -> running -> completed | failed (| cancelled).

Transitions only leave active states, so a late failure callback cannot overwrite a cancelled or completed
run, and every writer goes through these functions (backfill's bulk writes: `runs.backfilled`). Each works in
the caller's session and never commits: the caller (a pipeline step, a route, the CLI) owns the unit of work.
At most one queued/running run per (task, model, checkpoint) unless forced: the database's partial unique index
decides, and `create_run` turns its violation into a ConflictError naming the active run, whichever path
triggered.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from vlmevals.catalogue.store import get_model, get_task
from vlmevals.core.errors import ConflictError, InvalidRequestError, NotFoundError
from vlmevals.core.settings import get_settings
from vlmevals.core.vocabulary import ACTIVE_STATUSES, TRIGGER_SOURCES, RunStatus
from vlmevals.db.models import (
    ONE_ACTIVE_INDEX,
    EvalRun,
    EvalRunEvent,
    Model,
    Task,
)
from vlmevals.runs.board_entries import refresh_runs
from vlmevals.runs.export_outbox import EXPORTED_STATUSES, enqueue_exports, requeue_delivered
from vlmevals.runs.schemas import RunOptions

MAX_ERROR_CHARS = 8000
log = logging.getLogger(__name__)


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def artifacts_dir_for(run_id: int) -> str:
    """os.path, not pathlib: a run listing asks this for every row."""
    return os.path.join(get_settings().outputs_dir, "runs", str(run_id))


def fresh_artifacts_dir(run_id: int) -> str:
    """`runs/{id}`, unless a folder of that name holds another run's files (ids restart when a database is
    recreated): a new run must never resume from, or overwrite, someone else's artifacts."""
    path = Path(artifacts_dir_for(run_id))
    if path.exists() and any(path.iterdir()):
        path = path.with_name(f"{run_id}-{now():%Y%m%dT%H%M%S%f}")
    return str(path)


def _conflict(session: Session, task: Task, model: Model, checkpoint_id: int | None) -> ConflictError:
    active = find_active_run(session, task.id, model.id, checkpoint_id)
    what = (
        f"eval run {active.id} of {task.name} x {model.name} is already {active.status}"
        if active
        else (f"another evaluation of {task.name} x {model.name} was active a moment ago")
    )
    return ConflictError(
        f"{what}; follow it, or trigger again with force=true to start another one",
        existing_id=active.id if active else None,
    )


def _is_one_active_violation(err: IntegrityError) -> bool:
    diag = getattr(err.orig, "diag", None)
    return getattr(diag, "constraint_name", None) == ONE_ACTIVE_INDEX


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
    forced: bool = False,
    checkpoint_id: int | None = None,
    batched: bool = False,
) -> EvalRun:
    """A `queued` run (at `checkpoint_id`); ConflictError(existing_id) when the pair is active and not `forced`.

    The database decides (the partial unique index ONE_ACTIVE_INDEX), so concurrent triggers through any path
    get one winner; the insert runs in a savepoint, so the caller's session stays usable after a refusal.
    """
    if triggered_by not in TRIGGER_SOURCES:
        raise InvalidRequestError(f"triggered_by must be one of {', '.join(TRIGGER_SOURCES)}")
    task = get_task(session, task_name)
    model = get_model(session, model_name)
    opts = RunOptions.model_validate(options or {}).model_dump(exclude_none=True)
    run = EvalRun(
        task=task,
        model=model,
        status=RunStatus.QUEUED,
        triggered_by=triggered_by,
        triggered_by_user=user,
        options=opts,
        dag_id=dag_id,
        dag_run_id=dag_run_id,
        forced=forced,
        checkpoint_id=checkpoint_id,
        batched=batched,
    )
    try:
        with session.begin_nested():
            session.add(run)
            session.flush()
    except IntegrityError as err:
        if not _is_one_active_violation(err):
            raise
        raise _conflict(session, task, model, checkpoint_id) from err
    run.artifacts_dir = fresh_artifacts_dir(run.id)
    _event(session, run.id, RunStatus.QUEUED, f"triggered by {triggered_by}" + (f" ({user})" if user else ""))
    session.flush()
    return run


def record_refused(
    session: Session,
    task_name: str,
    model_name: str,
    *,
    triggered_by: str,
    user: str | None,
    dag_id: str,
    dag_run_id: str,
    error: str,
) -> EvalRun:
    """A DAG run refused as a duplicate still gets its row (failed, naming the active run), so every
    `eval_run` DAG run has one."""
    run = EvalRun(
        task=get_task(session, task_name),
        model=get_model(session, model_name),
        status=RunStatus.FAILED,
        triggered_by=triggered_by,
        triggered_by_user=user,
        dag_id=dag_id,
        dag_run_id=dag_run_id,
        finished_at=now(),
        error=error,
    )
    session.add(run)
    session.flush()
    _event(session, run.id, RunStatus.FAILED, error)
    refresh_runs(session.connection(), [run.id])  # the pair's latest run on the boards' unranked list
    return run


def bind_dag_run(run: EvalRun, dag_id: str, dag_run_id: str) -> None:
    """Name the DAG run that will execute a run created before it (plugin, nightly)."""
    run.dag_id, run.dag_run_id = dag_id, dag_run_id


def _event(session: Session, run_id: int, status: str, message: str | None) -> None:
    session.add(EvalRunEvent(run_id=run_id, status=status, message=message))


def get_run(session: Session, run_id: int) -> EvalRun:
    run = session.get(EvalRun, run_id)
    if run is None:
        raise NotFoundError(f"no eval run with id {run_id}")
    return run


def find_active_run(session: Session, task_id: int, model_id: int, checkpoint_id: int | None = None) -> EvalRun | None:
    at = EvalRun.checkpoint_id.is_not_distinct_from(checkpoint_id)
    pair = (EvalRun.task_id == task_id, EvalRun.model_id == model_id, at, EvalRun.status.in_(ACTIVE_STATUSES))
    return session.scalar(select(EvalRun).where(*pair).order_by(EvalRun.id).limit(1))


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
    bind_dag_run(run, dag_id, dag_run_id)
    return run


def _transition(
    session: Session,
    run_id: int,
    values: dict[str, Any],
    from_statuses: tuple[str, ...] = ACTIVE_STATUSES,
    message: str | None = None,
    then: Callable[[Session], object] | None = None,
) -> bool:
    """`then` runs in the same transaction once the row changed (inside a savepoint: its failure is logged and
    rolled back alone, the transition still commits with the caller's transaction)."""
    stmt = update(EvalRun).where(EvalRun.id == run_id, EvalRun.status.in_(from_statuses)).values(**values)
    res = session.execute(stmt)
    changed = bool(getattr(res, "rowcount", 0) == 1)  # an UPDATE's CursorResult
    if changed and "status" in values:
        _event(session, run_id, values["status"], message or values.get("error"))
        refresh_runs(session.connection(), [run_id])  # the boards' entries, in the transition's transaction
    if changed and values.get("status") in EXPORTED_STATUSES:
        enqueue_exports(session, run_id)  # the trackers learn of it exactly when our readers do
    if changed and then is not None:
        _in_savepoint(session, run_id, then)
    return changed


def _in_savepoint(session: Session, run_id: int, then: Callable[[Session], object]) -> None:
    try:
        with session.begin_nested():
            then(session)
    except Exception:
        log.exception("follow-up of eval run %s's transition failed; the transition itself is stored", run_id)


def mark_running(session: Session, run_id: int, attempt: int, step: str = "inference") -> bool:
    run = get_run(session, run_id)
    if run.status not in ACTIVE_STATUSES:
        return False
    run.status = RunStatus.RUNNING
    run.started_at = run.started_at or now()
    run.attempts = max(run.attempts, attempt)
    run.error = None
    _event(session, run_id, RunStatus.RUNNING, f"{step} attempt {attempt}")
    return True


def set_progress(session: Session, run_id: int, done: int, total: int | None) -> None:
    if total is not None:
        done = min(done, total)
    _transition(session, run_id, {"progress_done": done, "progress_total": total})


def set_vlmeval_version(session: Session, run_id: int, version: str | None) -> None:
    _transition(session, run_id, {"vlmeval_version": version})


def set_fingerprint(session: Session, run_id: int, fp: dict[str, Any], digest: str) -> None:
    """What determines the run's result, recorded at inference time (see vlmevals.results.fingerprint)."""
    _transition(session, run_id, {"fingerprint": fp, "fingerprint_hash": digest})


def mark_completed(
    session: Session,
    run_id: int,
    *,
    primary_metric: float | None,
    metrics: dict[str, Any],
    extra: dict[str, Any] | None = None,
    then: Callable[[Session], object] | None = None,
) -> bool:
    """`then` (the regression check) commits with the completion: no reader sees the run completed unflagged."""
    values = {
        "status": RunStatus.COMPLETED,
        "finished_at": now(),
        "primary_metric": primary_metric,
        "metrics": metrics,
        "error": None,
        **(extra or {}),
    }
    return _transition(session, run_id, values, message=f"primary metric {primary_metric}", then=then)


def mark_failed(session: Session, run_id: int, error: str) -> bool:
    error = error.strip() or "failed without a message (see the Airflow task log)"
    if len(error) > MAX_ERROR_CHARS:
        error = error[:MAX_ERROR_CHARS] + " …[truncated]"
    return _transition(session, run_id, {"status": RunStatus.FAILED, "finished_at": now(), "error": error})


def mark_cancelled(session: Session, run_id: int, user: str | None = None, reason: str | None = None) -> bool:
    """`reason` replaces "cancelled by USER" (e.g. a DAG run marked success in Airflow before any result)."""
    error = reason or ("cancelled" + (f" by {user}" if user else ""))
    return _transition(session, run_id, {"status": RunStatus.CANCELLED, "finished_at": now(), "error": error})


def record_regression(
    session: Session, run_id: int, *, regression: bool, detail: dict[str, Any], baseline_run_id: int
) -> None:
    """Store a regression verdict on a run (decided by vlmevals.results.regression). A verdict that is new or
    different sends the run to the trackers again where they already have it (export_outbox.requeue_delivered)."""
    before = session.execute(
        select(EvalRun.regression, EvalRun.regression_detail.is_not(None), EvalRun.baseline_run_id).where(
            EvalRun.id == run_id
        )
    ).one_or_none()
    values = {"regression": regression, "regression_detail": detail, "baseline_run_id": baseline_run_id}
    session.execute(update(EvalRun).where(EvalRun.id == run_id).values(**values))
    if before is not None and tuple(before) != (regression, True, baseline_run_id):
        requeue_delivered(session, run_id)
    refresh_runs(session.connection(), [run_id])  # the boards show the flag: their task's pages are stale


def record_preparation(session: Session, run_id: int, message: str) -> None:
    """An event of a queued run's preparation (a dataset download, Hub weights fetched): its time on the history."""
    _event(session, run_id, RunStatus.QUEUED, message)


def note_late_verdict(session: Session, run_id: int, message: str) -> None:
    """A verdict stored after its run completed gets an event: the history says when it came, and the boards'
    cached pages (stamped by the newest event) show the new flag."""
    _event(session, run_id, RunStatus.COMPLETED, message)
