"""The ingest_metrics hook for per-sample results: read the run's per-sample file, store its rows, summarise.

Idempotent: a rerun replaces the run's samples in the caller's transaction, so it can never leave half a run.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from vlmevals.db.models import EvalRun
from vlmevals.results.samples.parse import read_records, read_samples
from vlmevals.results.samples.store import record_rows, store
from vlmevals.results.samples.summary import SampleSummary, summarise
from vlmevals.runs import judge_usage

log = logging.getLogger(__name__)


def ingest(
    session: Session,
    run_id: int,
    pred_root: Path,
    model: str,
    data: str,
    scale: float = 1.0,
    judge_unreachable: bool = False,
) -> SampleSummary | None:
    """Read, store and summarise one run's samples (a rerun replaces them). None: no per-sample file.
    `judge_unreachable`: the run's judge gateway saw VLMEvalKit's probe fail (see samples.parse)."""
    got = read_samples(pred_root, model, data, judge_unreachable)
    if got is None:
        log.info("no per-sample file for %s x %s in %s", model, data, pred_root)
        return None
    records, path = got
    store(session, run_id, records)
    summary = summarise(records, path.name, scale)
    log.info("ingested %s samples of run %s from %s (%s failed)", summary.total, run_id, path.name, summary.failed)
    return summary


# COPY rows (without run id), the summary for metrics["samples"], eval_runs' summary columns
PerSample = tuple[list[tuple[Any, ...]], dict[str, Any], dict[str, Any]]


def read_summarised(path: Path, scale: float) -> PerSample:
    """One per-sample file read and summarised without the database (backfill does this in worker processes
    and stores many runs' rows in one COPY, see store.replace_samples). Raises on an unreadable file."""
    records = read_records(path)
    summary = summarise(records, path.name, scale)
    return record_rows(records), summary.as_metrics(), summary.run_columns()


def _metric_scale(session: Session, run_id: int) -> float:
    run = session.get(EvalRun, run_id)
    return float(run.task.metric_scale) if run is not None else 1.0


def _judge_unreachable(session: Session, run_id: int) -> bool:
    run = session.get(EvalRun, run_id)
    usage = judge_usage.of(run.fingerprint if run is not None else None)
    return bool(usage and usage.get("probe_failed"))


def ingest_for_run(
    session: Session, run_id: int, pred_root: Path, model: str, data: str, metrics: dict[str, Any]
) -> dict[str, Any]:
    """The ingest_metrics hook: store the run's samples, add their summary to `metrics["samples"]` and return
    eval_runs' summary columns. Never raises: the official metrics must be recorded even if a per-sample file
    is unreadable (the reason goes to `metrics["samples_error"]`; its writes roll back to a savepoint)."""
    try:
        with session.begin_nested():
            summary = ingest(
                session,
                run_id,
                pred_root,
                model,
                data,
                scale=_metric_scale(session, run_id),
                judge_unreachable=_judge_unreachable(session, run_id),
            )
    except Exception as err:  # a per-sample parser problem must not lose the run's official score
        log.exception("per-sample ingestion failed for run %s", run_id)
        metrics["samples_error"] = f"{type(err).__name__}: {err}"
        return {}
    if summary is None:
        return {}
    metrics["samples"] = summary.as_metrics()
    return summary.run_columns()
