"""Per-sample results of backfilled runs, through the same ingest the pipeline's ingest_metrics uses, so
confidence intervals, failed-sample counts, compare and regression checks work on them as on our own runs.

Only completed results are ingested (a failed one has no per-sample file worth reading); a result without a
per-sample file (`*_result.xlsx`, `_results.xlsx`, `_auxmatch.xlsx`, or the prediction file) keeps its official
score without an interval.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from vlmevals.backfill.report import SyncReport
from vlmevals.runs import lifecycle as runs

Ingestable = tuple[int, str, str, str, dict[str, Any]]  # run id, folder, model, data, metrics


def ingest_samples(engine: Engine | None, todo: list[Ingestable], report: SyncReport) -> None:
    """Store each run's samples and write their summary onto the run (metrics["samples"], ci_low/ci_high...)."""
    if not todo:
        return
    from vlmevals.results.samples import ingest_for_run  # pandas/scipy only when there is something to ingest

    for run_id, folder, model, data, metrics in todo:
        metrics = dict(metrics)
        columns = ingest_for_run(engine, run_id, Path(folder), model, data, metrics)
        if not columns and "samples_error" not in metrics:
            continue
        runs.resync_backfilled(engine, run_id, {"metrics": metrics, **columns}, None)
        report.samples_ingested += bool(columns)
