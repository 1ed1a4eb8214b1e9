"""Backfill: record results already sitting in a VLMEvalKit work dir as eval runs.

Matching: the folder's model name to `models.vlmeval_model`, the dataset to `tasks.vlmeval_data`. A finished
result becomes a completed run with its metrics (read with `vlmevals.vlmevalkit.outputs`, the same readers the
pipeline uses), a result VLMEvalKit recorded as failed becomes a failed run with its error. Unknown models or
tasks are reported (or created with `create_unknown`), malformed results are reported with the file and the
reason; nothing stops the scan.

Idempotent and fast: each run stores its `source_path` (unique) and `source_mtime_ns`; a re-scan compares the
listing with them and opens no file of an unchanged result. Two passes, because the boards need only the runs
and 98 % of the reading is the per-sample files:

1. the metric files (read here, ~0.03 ms each), and the new runs stored in batches (one INSERT ... ON CONFLICT
   DO NOTHING of runs, so a concurrent sync cannot create duplicates, one of events; the board entries
   refreshed): the results are on the boards when this pass commits (`SyncReport.runs_seconds`). A new run
   whose per-sample file is still to be read names it in `metrics["samples_pending"]`;
2. those per-sample files, parsed and summarised in a process pool, each batch written while the pool reads on
   (one COPY of samples, one UPDATE of the runs' summaries and CI, board entries refreshed, the runs queued for
   the trackers). A sync interrupted between the passes leaves the marker, and the next scan does the second
   pass for those runs (their files unchanged: nothing else is read).

A changed result (a flat folder rewritten by a rerun) is re-read whole, its per-sample file in the same job.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from vlmevals.backfill.matching import Known, Tasks, create_missing, known_sources, load_catalogue, match
from vlmevals.backfill.outcomes import Outcome, StatusCache, TaskInfo, completed_outcome, judge_outcome
from vlmevals.backfill.reading import Job, read_many
from vlmevals.backfill.report import Problem, SyncReport
from vlmevals.backfill.scanner import FolderListing, ResultRef, datasets_in, list_folders, results_of
from vlmevals.backfill.writes import fill_samples, insert_new, row_for, update_known
from vlmevals.core.errors import InvalidRequestError
from vlmevals.core.vocabulary import RunStatus
from vlmevals.db.engine import session_scope
from vlmevals.runs.backfilled import SAMPLES_PENDING

log = logging.getLogger(__name__)
Matched = list[tuple[ResultRef, int, TaskInfo]]


def _changed(refs: list[ResultRef], known: dict[str, Known], report: SyncReport) -> list[ResultRef]:
    """The results whose files are new or changed since the last sync (an unchanged one costs a dict lookup)."""
    pending = [r for r in refs if known.get(r.source_path, (0, None))[1] != r.mtime_ns]
    report.unchanged += len(refs) - len(pending)
    report.results_seen += len(refs)
    return pending


def _pending_in(
    lst: FolderListing, known: dict[str, Known], tasks: Tasks, statuses: StatusCache, report: SyncReport
) -> list[ResultRef]:
    groups = datasets_in(lst, known=set(tasks))
    refs = results_of(lst, groups)
    pending = _changed(refs, known, report)
    if lst.status_mtime_ns is not None and (pending or not refs or any(r.source_path not in known for r in refs)):
        # a failure may be recorded only in status.json (no files): look there for more datasets
        status = statuses.get(lst.path, True)
        names = [n for n in ((status.get("datasets") or {}) if isinstance(status, dict) else {}) if n not in groups]
        if names:
            pending += _changed(results_of(lst, {n: {} for n in names}), known, report)
    return pending


def _read_outcomes(
    matched: Matched, known: dict[str, Known], statuses: StatusCache, workers: int, report: SyncReport
) -> dict[str, Outcome]:
    """status.json once per folder, metric files only where needed; a new result's per-sample file is left to
    the second pass (named in metrics[SAMPLES_PENDING]), a changed one's read in the same job."""
    got: dict[str, Outcome] = {}
    jobs: list[Job] = []
    job_refs: list[ResultRef] = []
    later: dict[str, str] = {}
    for r, _, t in matched:
        decided = judge_outcome(r, t, statuses.get(r.folder, r.status_mtime_ns is not None))
        if isinstance(decided, Outcome):
            got[r.source_path] = decided
            continue
        if r.source_path not in known and decided.sample_file is not None:
            later[r.source_path] = os.path.basename(decided.sample_file)
            decided = decided._replace(sample_file=None)
        jobs.append(decided)
        job_refs.append(r)
    for r, job, read in zip(job_refs, jobs, read_many(jobs, workers), strict=True):
        status = statuses.get(r.folder, r.status_mtime_ns is not None)
        o = got[r.source_path] = completed_outcome(r, status, job.metric_file, read)
        if o.status == RunStatus.COMPLETED and r.source_path in later:
            o.metrics[SAMPLES_PENDING] = later[r.source_path]
    report.files_parsed = len(jobs)
    return got


def _reported(r: ResultRef, o: Outcome, report: SyncReport) -> bool:
    """Results that become no run: listed in the report with the file and the reason (and samples reached)."""
    lists = {"malformed": report.malformed, "incomplete": report.incomplete, "not_scored": report.not_scored}
    if o.status not in lists:
        return False
    lists[o.status].append(Problem(o.file or r.source_path, o.reason or o.status, r.model, r.data, o.samples))
    return True


def _write(
    engine: Engine, matched: Matched, got: dict[str, Outcome], known: dict[str, Known], report: SyncReport
) -> list[int]:
    """New rows in bulk (one transaction per batch), changed ones in place (a flat folder rewritten by a rerun);
    the others reported. Returns the ids of the runs inserted."""
    new: list[tuple[dict[str, Any], Outcome]] = []
    for r, model_id, t in matched:
        o = got[r.source_path]
        if _reported(r, o, report):
            continue
        row = row_for(r, model_id, t, o)
        if r.source_path in known:
            update_known(engine, known[r.source_path], row, o, report)
        else:
            new.append((row, o))
            report.failed += o.status == RunStatus.FAILED
    return insert_new(engine, new, report)


def _root(folder: str | Path) -> str:
    root = os.path.abspath(os.fspath(folder)).rstrip("/") or "/"
    if not os.path.isdir(root):
        raise InvalidRequestError(
            f"{root} is not a folder; give the VLMEvalKit work dir (the --work-dir, whose "
            "sub-folders are named after models)"
        )
    return root


def _log(report: SyncReport) -> None:
    log.info(report.summary_line())
    for p in report.unknown[:50]:
        log.warning("unknown: %s: %s", p.path, p.reason)
    for p in report.malformed[:50]:
        log.warning("malformed: %s: %s", p.path, p.reason)


def sync_outputs(
    folder: str | Path,
    *,
    engine: Engine,
    create_unknown: bool = False,
    workers: int | None = None,
    samples: bool = True,
) -> SyncReport:
    """Scan `folder` (a VLMEvalKit work dir) and record every result not recorded yet. Safe to repeat.
    `samples=False`: the first pass only (runs and scores); a later sync reads the per-sample files.

    Takes an Engine, not a session: the writes commit in batches (see `backfill.writes`)."""
    started = time.perf_counter()
    report = SyncReport(folder=_root(folder))
    workers = workers if workers is not None else min(os.cpu_count() or 1, 8)
    with session_scope(engine) as s:
        models, tasks = load_catalogue(s)
        known = known_sources(s, report.folder)
    statuses = StatusCache()
    listings, report.ignored = list_folders(report.folder)
    todo = [r for lst in listings for r in _pending_in(lst, known, tasks, statuses, report)]
    if create_unknown:
        with session_scope(engine) as s:
            if create_missing(s, todo, models, tasks, report):
                s.flush()
                models, tasks = load_catalogue(s)
    matched = match(todo, models, tasks, report)
    inserted = _write(engine, matched, _read_outcomes(matched, known, statuses, workers, report), known, report)
    report.runs_seconds = time.perf_counter() - started
    if samples:  # the runs of this sync, and those an interrupted sync left waiting
        fill_samples(engine, [*inserted, *(k[0] for k in known.values() if k[5])], workers, report)
    report.seconds = time.perf_counter() - started
    _log(report)
    return report
