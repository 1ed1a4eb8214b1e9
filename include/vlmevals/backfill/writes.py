"""Backfill's writes, through the run life cycle: new runs in bulk, changed ones re-synced in place."""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

from sqlalchemy import Engine

from vlmevals.backfill.matching import Known
from vlmevals.backfill.outcomes import Outcome, TaskInfo, eval_id_time
from vlmevals.backfill.report import SyncReport
from vlmevals.backfill.scanner import ResultRef
from vlmevals.db.engine import session_scope
from vlmevals.runs import lifecycle as runs

TRIGGERED_BY = "backfill"
BATCH = 2000


def row_for(r: ResultRef, model_id: int, t: TaskInfo, o: Outcome) -> dict[str, Any]:
    finished = o.finished_at or eval_id_time(r.eval_id) or dt.datetime.fromtimestamp(r.mtime_ns / 1e9, dt.UTC)
    fp: dict[str, Any] = {
        "source": {
            "layout": r.layout,
            "folder": r.folder,
            "eval_id": r.eval_id,
            "metric_file": os.path.basename(o.file) if o.file else None,
        }
    }
    if o.commit:
        fp["toolkit"] = {"vlmeval": f"git:{o.commit}"}
    if o.judge:
        fp["judge"] = {"name": o.judge}
    return {
        "task_id": t.id,
        "model_id": model_id,
        "status": o.status,
        "triggered_by": TRIGGERED_BY,
        "dag_id": None,
        "options": {},
        "created_at": eval_id_time(r.eval_id) or finished,
        "finished_at": finished,
        "primary_metric": o.primary_metric,
        "metrics": o.metrics,
        "error": o.error,
        "artifacts_dir": r.folder,
        "vlmeval_version": f"git:{o.commit}" if o.commit else None,
        "fingerprint": fp,
        "source_path": r.source_path,
        "source_mtime_ns": r.mtime_ns,
    }


def insert_new(engine: Engine | None, rows: list[dict[str, Any]], report: SyncReport) -> list[tuple[int, str, str]]:
    """In batches of BATCH rows, one executemany statement each (see `lifecycle.insert_backfilled`); returns
    (id, status, source_path) of the rows this sync inserted."""
    inserted: list[tuple[int, str, str]] = []
    for i in range(0, len(rows), BATCH):
        chunk = rows[i : i + BATCH]
        with session_scope(engine) as s:
            got = runs.insert_backfilled(s.connection(), chunk)
        report.created += len(got)
        report.unchanged += len(chunk) - len(got)  # recorded meanwhile by a concurrent sync
        inserted += [(rid, st, sp) for rid, st, sp in got if sp is not None]
    return inserted


def update_known(engine: Engine | None, known: Known, row: dict[str, Any], report: SyncReport) -> bool:
    """A result whose files changed: its new mtime, and its new outcome if status, metric or error differ
    (True: the outcome was rewritten, so its per-sample results are read again)."""
    run_id, _, old_status, old_metric, old_error = known
    same = (old_status, old_metric, old_error) == (row["status"], row["primary_metric"], row["error"])
    values = {"source_mtime_ns": row["source_mtime_ns"]}
    message = None
    if not same:
        values.update({k: row[k] for k in runs.RESYNC_COLUMNS})
        message = (
            f"re-synced from {row['source_path']}: was {old_status} (primary metric {old_metric}), "
            f"now {row['status']} (primary metric {row['primary_metric']})"
        )
    runs.resync_backfilled(engine, run_id, values, message)
    if same:
        report.unchanged += 1
    else:
        report.updated += 1
        report.failed += row["status"] == "failed"
    return not same
