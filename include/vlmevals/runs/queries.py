"""Read queries over eval runs as such (not their results): the run listing behind the runs endpoints."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session, defer, joinedload

from vlmevals.db.models import EvalRun, Model, Task


def list_runs(
    session: Session,
    task: Task | None,
    *,
    statuses: Sequence[str] = (),
    model: Model | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[EvalRun], int]:
    """A page of the task's (or all) runs, newest first, and the total matching the filters.

    The large JSON columns a listing does not show (metrics, fingerprint, regression detail) are not read:
    decoding them was most of the endpoint's time; touching one on a returned run loads it on demand.
    """
    cond = [EvalRun.task_id == task.id] if task is not None else []
    if statuses:
        cond.append(EvalRun.status.in_(list(statuses)))
    if model is not None:
        cond.append(EvalRun.model_id == model.id)
    total = session.scalar(select(func.count()).select_from(EvalRun).where(*cond)) or 0
    rows = session.scalars(
        select(EvalRun)
        .where(*cond)
        .options(
            joinedload(EvalRun.model),
            joinedload(EvalRun.task),
            defer(EvalRun.metrics),
            defer(EvalRun.fingerprint),
            defer(EvalRun.regression_detail),
        )
        .order_by(EvalRun.created_at.desc(), EvalRun.id.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    return list(rows), total
