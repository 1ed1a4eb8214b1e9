"""Send due outbox rows to their trackers: one row per short transaction, retried with exponential backoff.

A row is claimed with FOR UPDATE SKIP LOCKED, so two deliverers never send the same row at once, and eval runs
never wait on a tracker: they only insert rows. `deliver_pending` owns its transactions (one per row: a slow
tracker holds one row's lock, never the batch's), so its caller names the Engine. A row whose attempts are spent
turns `failed` (re-queued by `vlmevals exports retry`); until then it stays `pending` with its last error and
next attempt time.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import asdict, dataclass

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from vlmevals.core.settings import Settings, get_settings
from vlmevals.db.engine import session_scope
from vlmevals.db.models import ExportOutbox
from vlmevals.exports.records import load_record
from vlmevals.exports.registry import Exporter, exporter_for

log = logging.getLogger(__name__)
MAX_BACKOFF_S = 3600.0
MAX_ERROR_CHARS = 2000


@dataclass
class DeliveryReport:
    delivered: int = 0
    retrying: int = 0
    failed: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def backoff(settings: Settings, attempts: int) -> dt.timedelta:
    """10 s, 20 s, 40 s, … up to an hour (EVALS_EXPORT_BACKOFF_S is the first delay)."""
    return dt.timedelta(seconds=min(settings.export_backoff_s * 2 ** max(attempts - 1, 0), MAX_BACKOFF_S))


def deliver_pending(engine: Engine, *, now: dt.datetime | None = None, limit: int = 500) -> DeliveryReport:
    """Deliver every row due at `now` (default: the current time), at most `limit`; never raises for a tracker."""
    settings = get_settings()
    exporters: dict[str, Exporter] = {}
    report = DeliveryReport()
    for _ in range(limit):
        at = now or dt.datetime.now(dt.UTC)
        with session_scope(engine) as s:
            due = (ExportOutbox.state == "pending", ExportOutbox.next_attempt_at <= at)
            query = select(ExportOutbox).where(*due).order_by(ExportOutbox.next_attempt_at, ExportOutbox.id)
            row = s.scalar(query.limit(1).with_for_update(skip_locked=True))
            if row is None:
                break
            outcome = _attempt(s, row, settings, exporters, at)
        setattr(report, outcome, getattr(report, outcome) + 1)
    return report


def _attempt(s: Session, row: ExportOutbox, settings: Settings, exporters: dict[str, Exporter], at: dt.datetime) -> str:
    row.attempts += 1
    try:
        if row.exporter not in exporters:
            exporters[row.exporter] = exporter_for(row.exporter, settings)
        ref = exporters[row.exporter].deliver(load_record(s, row.run_id))
    except Exception as err:  # any tracker or client failure: keep the row, try later
        row.last_error = f"{type(err).__name__}: {err}"[:MAX_ERROR_CHARS]
        spent = row.attempts >= settings.export_max_attempts
        row.state = "failed" if spent else "pending"
        row.next_attempt_at = at + backoff(settings, row.attempts)
        log.warning("export of eval run %s to %s failed (attempt %s): %s", row.run_id, row.exporter, row.attempts, err)
        return "failed" if spent else "retrying"
    row.state, row.tracker_ref, row.delivered_at = "delivered", ref, dt.datetime.now(dt.UTC)
    log.info("eval run %s delivered to %s: %s", row.run_id, row.exporter, ref)
    return "delivered"
