"""Read, re-queue and backfill the export outbox (the API's list, `vlmevals exports retry|backfill`)."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict
from sqlalchemy import func, literal, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from vlmevals.core.settings import EXPORTERS
from vlmevals.db.models import EXPORT_STATES, EvalRun, ExportOutbox
from vlmevals.runs.export_outbox import EXPORTED_STATUSES


class ExportPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    run_id: int
    exporter: str
    state: str
    attempts: int
    last_error: str | None
    next_attempt_at: dt.datetime
    created_at: dt.datetime
    delivered_at: dt.datetime | None
    tracker_ref: str | None


class ExportList(BaseModel):
    data: list[ExportPublic]
    count: int
    states: dict[str, int]  # the whole outbox by state, whatever the filter


def list_exports(
    session: Session, *, state: str | None = None, run_id: int | None = None, limit: int = 50, offset: int = 0
) -> ExportList:
    """Newest first; `count` is the filtered total, `states` the outbox's shape at a glance."""
    where = []
    if state is not None:
        where.append(ExportOutbox.state == state)
    if run_id is not None:
        where.append(ExportOutbox.run_id == run_id)
    rows = session.scalars(
        select(ExportOutbox).where(*where).order_by(ExportOutbox.id.desc()).limit(limit).offset(offset)
    ).all()
    count = session.scalar(select(func.count()).select_from(ExportOutbox).where(*where)) or 0
    grouped = session.execute(select(ExportOutbox.state, func.count()).group_by(ExportOutbox.state))
    by_state: dict[str, int] = {state: n for state, n in grouped}
    return ExportList(
        data=[ExportPublic.model_validate(r) for r in rows],
        count=count,
        states={s: by_state.get(s, 0) for s in EXPORT_STATES},
    )


def retry_failed(session: Session, *, run_id: int | None = None, exporter: str | None = None) -> int:
    """Failed rows back to pending, attempts reset, due now; how many."""
    where = [ExportOutbox.state == "failed"]
    if run_id is not None:
        where.append(ExportOutbox.run_id == run_id)
    if exporter is not None:
        where.append(ExportOutbox.exporter == exporter)
    fresh = {"state": "pending", "attempts": 0, "next_attempt_at": func.now()}
    res = session.execute(update(ExportOutbox).where(*where).values(**fresh))
    return int(getattr(res, "rowcount", 0))


def resync_exports(
    session: Session, *, exporter: str, run_id: int | None = None, since: dt.datetime | None = None
) -> int:
    """One exporter's delivered and failed rows (optionally one run's, or those of runs finished since a time)
    back to pending, attempts reset, due now: a tracker that lost its data, or moved, gets everything again.
    Each exporter finds its tracker runs again and rewrites them, so a resync duplicates nothing. How many."""
    if exporter not in EXPORTERS:
        raise ValueError(f"no exporter named {exporter!r}; use one of {', '.join(EXPORTERS)}")
    where = [ExportOutbox.exporter == exporter, ExportOutbox.state.in_(("delivered", "failed"))]
    if run_id is not None:
        where.append(ExportOutbox.run_id == run_id)
    if since is not None:
        finished = select(EvalRun.id).where(EvalRun.id == ExportOutbox.run_id, EvalRun.finished_at >= since)
        where.append(finished.exists())
    fresh = {"state": "pending", "attempts": 0, "last_error": None, "next_attempt_at": func.now()}
    res = session.execute(update(ExportOutbox).where(*where).values(**fresh))
    return int(getattr(res, "rowcount", 0))


def backfill_exports(session: Session, *, since: dt.datetime, exporters: list[str]) -> int:
    """Queue (pending) the completed and failed runs finished since `since` that have no row for an exporter
    yet, one INSERT ... SELECT per exporter: history reaches a tracker once, and a second call adds nothing
    (rows already there, whatever their state, are left alone). How many rows were queued."""
    unknown = sorted(set(exporters) - set(EXPORTERS))
    if unknown:
        raise ValueError(f"no exporter named {', '.join(unknown)}; use one of {', '.join(EXPORTERS)}")
    queued = 0
    for name in exporters:
        has_row = select(ExportOutbox.id).where(ExportOutbox.run_id == EvalRun.id, ExportOutbox.exporter == name)
        runs = select(EvalRun.id, literal(name)).where(
            EvalRun.status.in_(EXPORTED_STATUSES), EvalRun.finished_at >= since, ~has_row.exists()
        )
        stmt = insert(ExportOutbox).from_select(["run_id", "exporter"], runs).on_conflict_do_nothing()
        queued += len(session.scalars(stmt.returning(ExportOutbox.id)).all())
    return queued
