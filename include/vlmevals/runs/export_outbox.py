"""Enqueue a finished run for the experiment trackers, inside the transaction that finishes it.

Writing the outbox row with the status change (not after it) is what makes delivery lose nothing: a run is
never completed without its rows, and no tracker call ever happens inside the run's own transaction (the
`deliver_exports` DAG sends them, see vlmevals.exports).
"""

from __future__ import annotations

from sqlalchemy import Connection, func, update
from sqlalchemy.dialects.postgresql import Insert, insert
from sqlalchemy.orm import Session

from vlmevals.core.settings import get_settings
from vlmevals.core.vocabulary import RunStatus
from vlmevals.db.models import ExportOutbox

EXPORTED_STATUSES: tuple[RunStatus, ...] = (RunStatus.COMPLETED, RunStatus.FAILED)


def _queue() -> Insert:
    """A run finished again (re-judged) is queued afresh: pending, attempts reset, due now."""
    fresh = {"state": "pending", "attempts": 0, "last_error": None, "next_attempt_at": func.now(), "delivered_at": None}
    return insert(ExportOutbox).on_conflict_do_update(constraint="uq_export_outbox_run_exporter", set_=fresh)


def enqueue_exports(session: Session, run_id: int) -> None:
    """One pending row per configured exporter."""
    names = get_settings().exporter_names
    if names:
        session.execute(_queue(), [{"run_id": run_id, "exporter": n} for n in names])


def enqueue_backfilled(connection: Connection, runs: list[tuple[int, str]]) -> None:
    """Backfill's batch of (run id, status): one row per configured exporter for each completed or failed run,
    in one executemany within the batch's transaction (backfilled runs export as pipeline runs do)."""
    names = get_settings().exporter_names
    rows = [{"run_id": rid, "exporter": n} for rid, status in runs if status in EXPORTED_STATUSES for n in names]
    if rows:
        connection.execute(_queue(), rows)


def requeue_delivered(session: Session, run_id: int) -> int:
    """The run's delivered rows back to pending, due now: what the trackers have of it changed (a verdict came
    late). Pending rows will send the new state anyway, failed ones wait for `vlmevals exports retry`; each
    exporter finds its tracker run again and updates it. How many rows."""
    fresh = {"state": "pending", "attempts": 0, "last_error": None, "next_attempt_at": func.now(), "delivered_at": None}
    where = (ExportOutbox.run_id == run_id, ExportOutbox.state == "delivered")
    return int(getattr(session.execute(update(ExportOutbox).where(*where).values(**fresh)), "rowcount", 0))
