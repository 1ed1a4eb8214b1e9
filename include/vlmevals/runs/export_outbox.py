"""Enqueue a finished run for the experiment trackers, inside the transaction that finishes it.

Writing the outbox row with the status change (not after it) is what makes delivery lose nothing: a run is
never completed without its rows, and no tracker call ever happens inside the run's own transaction (the
`deliver_exports` DAG sends them, see vlmevals.exports).
"""

from __future__ import annotations

from sqlalchemy import func
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from vlmevals.core.settings import get_settings
from vlmevals.core.vocabulary import RunStatus
from vlmevals.db.models import ExportOutbox

EXPORTED_STATUSES: tuple[RunStatus, ...] = (RunStatus.COMPLETED, RunStatus.FAILED)


def enqueue_exports(session: Session, run_id: int) -> None:
    """One pending row per configured exporter; a run finished again (re-judged) is queued afresh."""
    names = get_settings().exporter_names
    if not names:
        return
    stmt = insert(ExportOutbox).values([{"run_id": run_id, "exporter": n} for n in names])
    fresh = {"state": "pending", "attempts": 0, "last_error": None, "next_attempt_at": func.now(), "delivered_at": None}
    session.execute(stmt.on_conflict_do_update(constraint="uq_export_outbox_run_exporter", set_=fresh))
