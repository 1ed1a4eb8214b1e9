"""Backfilled runs' bulk writes: rows and events recorded from results found on disk, in the caller's
transaction (the eval-run life cycle's other writers are in `runs.lifecycle`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from vlmevals.db.models import EvalRun, EvalRunEvent
from vlmevals.runs.board_entries import refresh_runs
from vlmevals.runs.export_outbox import enqueue_backfilled

# the columns a re-synced backfilled run takes from its source again
RESYNC_COLUMNS = ("status", "primary_metric", "metrics", "error", "finished_at", "fingerprint", "vlmeval_version")


def insert_backfilled(connection: Connection, rows: list[dict[str, Any]]) -> list[tuple[int, str, str | None]]:
    """Backfilled runs in one executemany INSERT ... ON CONFLICT (source_path) DO NOTHING, with their events and
    their export outbox rows; (id, status, source_path) of the rows inserted (a concurrent sync may have recorded
    the others)."""
    stmt = (
        pg_insert(EvalRun)
        .on_conflict_do_nothing(index_elements=[EvalRun.source_path], index_where=EvalRun.source_path.isnot(None))
        .returning(EvalRun.id, EvalRun.status, EvalRun.source_path, sort_by_parameter_order=True)
    )
    got = [(rid, st, sp) for rid, st, sp in connection.execute(stmt, rows).all()]
    if got:
        events = [{"run_id": rid, "status": st, "message": f"backfilled from {sp}"} for rid, st, sp in got]
        connection.execute(pg_insert(EvalRunEvent), events)
        enqueue_backfilled(connection, [(rid, st) for rid, st, _ in got])
        refresh_runs(connection, [rid for rid, _, _ in got])
    return got


def resync_backfilled(connection: Connection, run_id: int, values: dict[str, Any], msg: str | None) -> None:
    """A backfilled run whose source changed: new mtime, and (with `msg`, its event) a new outcome, in the
    caller's transaction (backfill replaces the run's samples in the same one). A new outcome is queued for the
    trackers again (pending, whatever its rows' state: each exporter updates the tracker run it made)."""
    connection.execute(update(EvalRun).where(EvalRun.id == run_id).values(**values))
    if msg is not None:
        connection.execute(pg_insert(EvalRunEvent), [{"run_id": run_id, "status": values["status"], "message": msg}])
        enqueue_backfilled(connection, [(run_id, values["status"])])
        refresh_runs(connection, [run_id])
