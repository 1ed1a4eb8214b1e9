"""Backfilled runs' bulk writes: rows and events recorded from results found on disk, in the caller's
transaction (the eval-run life cycle's other writers are in `runs.lifecycle`).

Two passes (see `vlmevals.backfill`): the runs first, with their scores (what the boards need), and their
per-sample summaries after. A run whose per-sample file is still to be read carries the file's name in
`metrics[SAMPLES_PENDING]`; it is queued for the trackers only when `samples_filled` records the summary, so a
tracker never gets a run without its CI.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Connection, text, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert

from vlmevals.db.models import EvalRun, EvalRunEvent
from vlmevals.runs.board_entries import refresh_runs, refresh_summaries
from vlmevals.runs.export_outbox import enqueue_backfilled

# the columns a re-synced backfilled run takes from its source again
RESYNC_COLUMNS = ("status", "primary_metric", "metrics", "error", "finished_at", "fingerprint", "vlmeval_version")
# metrics key of a backfilled run whose per-sample file (this name, in its artifacts_dir) is still to be read
SAMPLES_PENDING = "samples_pending"
SUMMARY_COLUMNS = ("samples_total", "samples_failed", "ci_low", "ci_high")


def _copy_rows(rows: list[dict[str, Any]], cols: list[str]) -> Iterator[tuple[Any, ...]]:
    """The rows as COPY's text format takes them, numbered: JSON columns as their text (the server parses them as
    jsonb); psycopg writes the rest (enums, as str subclasses, by their value)."""
    table = EvalRun.__table__.c
    json_cols = [(c, isinstance(table[c].type, JSONB)) for c in cols]
    for i, row in enumerate(rows):
        yield (i, *[json.dumps(row[c]) if j and row[c] is not None else row[c] for c, j in json_cols])


def insert_backfilled(connection: Connection, rows: list[dict[str, Any]]) -> list[tuple[int, str, str | None]]:
    """Backfilled runs (every row the same keys) with their events and their export outbox rows; (id, status,
    source_path) of the rows inserted, in the rows' order (a concurrent sync may have recorded the others).

    The rows go by COPY into a temporary table and from there in one INSERT ... SELECT ... ON CONFLICT
    (source_path) DO NOTHING whose RETURNING also writes the events: a multi-row INSERT of 2,000 runs spent
    most of its time in the driver building and splitting a statement of 40,000 placeholders."""
    if not rows:
        return []
    cols = list(rows[0])
    names = ", ".join(cols)
    connection.execute(text("DROP TABLE IF EXISTS pg_temp.backfill_rows"))
    connection.execute(
        text(f"CREATE TEMP TABLE backfill_rows ON COMMIT DROP AS SELECT 0 AS ord, {names} FROM eval_runs WITH NO DATA")
    )
    raw: Any = connection.connection.driver_connection
    with raw.cursor() as cur, cur.copy(f"COPY backfill_rows (ord, {names}) FROM STDIN") as cp:
        for values in _copy_rows(rows, cols):
            cp.write_row(values)
    stmt = text(
        f"WITH ins AS (INSERT INTO eval_runs ({names}) SELECT {names} FROM backfill_rows ORDER BY ord "
        "ON CONFLICT (source_path) WHERE source_path IS NOT NULL DO NOTHING RETURNING id, status, source_path), "
        "ev AS (INSERT INTO eval_run_events (run_id, status, message) "
        "SELECT id, status, 'backfilled from ' || source_path FROM ins ORDER BY id) "
        "SELECT id, status, source_path FROM ins ORDER BY id"
    )
    got = [(rid, st, sp) for rid, st, sp in connection.execute(stmt).all()]
    if got:
        later = {r["source_path"] for r in rows if SAMPLES_PENDING in (r.get("metrics") or {})}
        enqueue_backfilled(connection, [(rid, st) for rid, st, sp in got if sp not in later])
        refresh_runs(connection, [rid for rid, _, _ in got])
    return got


def pending_samples(connection: Connection, run_ids: list[int]) -> list[tuple[int, str, str, float]]:
    """(run id, artifacts_dir, per-sample file name, the task's metric scale) of those runs still waiting for
    their per-sample summary; by primary key, so a re-scan finds an interrupted second pass for free."""
    if not run_ids:
        return []
    stmt = text(
        "SELECT r.id, r.artifacts_dir, r.metrics ->> CAST(:key AS text), t.metric_scale FROM eval_runs r "
        "JOIN tasks t ON t.id = r.task_id WHERE r.id = ANY(:ids) AND r.metrics ? CAST(:key AS text) ORDER BY r.id"
    ).bindparams(key=SAMPLES_PENDING, ids=sorted(set(run_ids)))
    return [(rid, folder, name, float(scale)) for rid, folder, name, scale in connection.execute(stmt)]


_FILL = text(
    "UPDATE eval_runs r SET metrics = (r.metrics - CAST(:key AS text)) || f.patch, "
    "samples_total = f.samples_total, samples_failed = f.samples_failed, ci_low = f.ci_low, ci_high = f.ci_high "
    "FROM jsonb_to_recordset(CAST(:filled AS jsonb)) AS f(run_id bigint, patch jsonb, samples_total int, "
    "samples_failed int, ci_low float8, ci_high float8) "
    "WHERE r.id = f.run_id AND r.metrics ? CAST(:key AS text) RETURNING r.id, r.status"
)


def samples_filled(connection: Connection, filled: list[tuple[int, dict[str, Any], dict[str, Any]]]) -> list[int]:
    """The second pass's results for runs still pending: (run id, metrics patch: `samples` or `samples_error`,
    the summary columns), in one UPDATE; their board entries (CI, counts) refreshed and the runs queued for the
    trackers. Returns the ids updated (a run re-synced meanwhile is no longer pending and is left alone)."""
    if not filled:
        return []
    payload = [
        {"run_id": rid, "patch": patch, **{c: columns.get(c) for c in SUMMARY_COLUMNS}}
        for rid, patch, columns in filled
    ]
    got = connection.execute(_FILL, {"key": SAMPLES_PENDING, "filled": json.dumps(payload)}).all()
    enqueue_backfilled(connection, [(rid, st) for rid, st in got])
    refresh_summaries(connection, [rid for rid, _ in got])
    return [rid for rid, _ in got]


def resync_backfilled(connection: Connection, run_id: int, values: dict[str, Any], msg: str | None) -> None:
    """A backfilled run whose source changed: new mtime, and (with `msg`, its event) a new outcome, in the
    caller's transaction (backfill replaces the run's samples in the same one). A new outcome is queued for the
    trackers again (pending, whatever its rows' state: each exporter updates the tracker run it made)."""
    connection.execute(update(EvalRun).where(EvalRun.id == run_id).values(**values))
    if msg is not None:
        connection.execute(pg_insert(EvalRunEvent), [{"run_id": run_id, "status": values["status"], "message": msg}])
        enqueue_backfilled(connection, [(run_id, values["status"])])
        refresh_runs(connection, [run_id])
