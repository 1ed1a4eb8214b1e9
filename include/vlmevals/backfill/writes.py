"""Backfill's writes, through the run life cycle: new runs in bulk, then their samples (the second pass), changed
ones re-synced in place. They take an Engine and own their transactions: a sync of 100,000 results commits every
BATCH rows (a crash keeps what was stored, and no transaction grows without bound), and each re-synced result on
its own."""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

from sqlalchemy import Engine

from vlmevals.backfill.matching import Known
from vlmevals.backfill.outcomes import Outcome, TaskInfo, eval_id_time
from vlmevals.backfill.reading import read_samples_many
from vlmevals.backfill.report import SyncReport
from vlmevals.backfill.scanner import ResultRef
from vlmevals.core.vocabulary import RunStatus, TriggeredBy
from vlmevals.db.engine import session_scope
from vlmevals.results.samples.ingest import PerSample
from vlmevals.results.samples.store import replace_samples
from vlmevals.runs import backfilled as runs

BATCH = 2000
SAMPLE_COLUMNS = ("samples_total", "samples_failed", "ci_low", "ci_high")


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
        "triggered_by": TriggeredBy.BACKFILL,
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
        **{c: o.sample_columns.get(c) for c in SAMPLE_COLUMNS},  # every row the same keys (one executemany)
    }


def insert_new(engine: Engine, new: list[tuple[dict[str, Any], Outcome]], report: SyncReport) -> list[int]:
    """In batches of BATCH rows, each one transaction: the runs, their events and export outbox rows (see
    `runs.backfilled.insert_backfilled`). Returns the ids inserted (their per-sample files are the second pass's)."""
    ids: list[int] = []
    for i in range(0, len(new), BATCH):
        chunk = new[i : i + BATCH]
        with session_scope(engine) as s:
            got = runs.insert_backfilled(s.connection(), [row for row, _ in chunk])
        ids += [rid for rid, _, _ in got]
        report.created += len(got)
        report.unchanged += len(chunk) - len(got)  # recorded meanwhile by a concurrent sync
    return ids


def _patch(read: PerSample | str) -> tuple[dict[str, Any], dict[str, Any], list[tuple[Any, ...]] | None]:
    """What a per-sample read adds to its run, as the pipeline's ingest records it: metrics["samples"] and the
    summary columns, or the reason in metrics["samples_error"] (the official score stays)."""
    if isinstance(read, str):
        return {"samples_error": read}, {}, None
    rows, summary, columns = read
    return {"samples": summary}, columns, rows


def fill_samples(engine: Engine, run_ids: list[int], workers: int, report: SyncReport) -> None:
    """The second pass: the per-sample files of those runs still waiting for them, read in a process pool; each
    batch of BATCH runs written in one transaction (summaries and CI, one COPY of their samples) while the pool
    reads the next."""
    with session_scope(engine) as s:
        pending = runs.pending_samples(s.connection(), run_ids)
    reads = read_samples_many([(f"{folder}/{name}", scale) for _, folder, name, scale in pending], workers)
    report.sample_files_parsed += len(pending)
    batch: list[tuple[int, PerSample | str]] = []
    for (rid, *_), read in zip(pending, reads, strict=True):
        batch.append((rid, read))
        if len(batch) == BATCH:
            _store_samples(engine, batch, report)
            batch = []
    _store_samples(engine, batch, report)


def _store_samples(engine: Engine, batch: list[tuple[int, PerSample | str]], report: SyncReport) -> None:
    if not batch:
        return
    patches = {rid: _patch(read) for rid, read in batch}
    with session_scope(engine) as s:
        conn = s.connection()
        filled = runs.samples_filled(conn, [(rid, patch, cols) for rid, (patch, cols, _) in patches.items()])
        stored = [(rid, rows) for rid in filled if (rows := patches[rid][2]) is not None]
        replace_samples(conn, stored)
    report.samples_ingested += len(stored)


def update_known(engine: Engine, known: Known, row: dict[str, Any], o: Outcome, report: SyncReport) -> None:
    """A result whose files changed: its new mtime, and its new outcome if status, metric or error differ
    (then its per-sample results are replaced too, as the pipeline's ingest would)."""
    run_id, _, old_status, old_metric, old_error, _ = known
    same = (old_status, old_metric, old_error) == (row["status"], row["primary_metric"], row["error"])
    values = {"source_mtime_ns": row["source_mtime_ns"]}
    message = None
    if not same:
        values.update({k: row[k] for k in runs.RESYNC_COLUMNS})
        values.update(o.sample_columns)  # none when no per-sample file was read: the old summary stays
        message = (
            f"re-synced from {row['source_path']}: was {old_status} (primary metric {old_metric}), "
            f"now {row['status']} (primary metric {row['primary_metric']})"
        )
    with session_scope(engine) as s:
        runs.resync_backfilled(s.connection(), run_id, values, message)
        if not same and o.sample_rows is not None:
            replace_samples(s.connection(), [(run_id, o.sample_rows)])
    if same:
        report.unchanged += 1
    else:
        report.updated += 1
        report.failed += row["status"] == RunStatus.FAILED
        report.samples_ingested += o.sample_rows is not None
