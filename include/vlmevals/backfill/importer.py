"""Backfill: record results already sitting in a VLMEvalKit work dir as eval runs.

Matching: the folder's model name to `models.vlmeval_model`, the dataset to `tasks.vlmeval_data`. A finished
result becomes a completed run with its metrics (read with `vlmevals.toolkit.outputs`, the same readers the
pipeline uses), a result VLMEvalKit recorded as failed becomes a failed run with its error. Unknown models or
tasks are reported (or created with `create_unknown`), malformed results are reported with the file and the
reason; nothing stops the scan.

Idempotent and fast: each run stores its `source_path` (unique) and `source_mtime_ns`; a re-scan compares the
listing with them and opens no file of an unchanged result. New rows go in with one multi-row INSERT ... ON
CONFLICT DO NOTHING (a concurrent sync cannot create duplicates); metric files are parsed in a process pool
when there are many.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from vlmevals.backfill.scanner import STATUS_FILE, ResultRef, datasets_in, list_folders, results_of
from vlmevals.core.errors import InvalidRequestError, VLMEvalFailure
from vlmevals.db.engine import session_scope
from vlmevals.db.models import SLUG_PATTERN, EvalRun, EvalRunEvent, Model, Task
from vlmevals.toolkit import outputs as results

log = logging.getLogger(__name__)
TRIGGERED_BY = "backfill"
PARALLEL_MIN = 400  # below this many metric files, a process pool costs more than it saves
METRIC_SUFFIXES = ("_acc.csv", "_score.csv", "_acc.xlsx", "_score.xlsx", "_acc.json", "_score.json")
BATCH = 2000


@dataclass
class Problem:
    """A result not recorded, and why (unknown model/task, malformed files)."""

    path: str
    reason: str
    model: str | None = None
    data: str | None = None


@dataclass
class SyncReport:
    folder: str
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0  # of the created/updated: results VLMEvalKit recorded as failed
    unknown: list[Problem] = field(default_factory=list)
    malformed: list[Problem] = field(default_factory=list)
    created_models: list[str] = field(default_factory=list)
    created_tasks: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    results_seen: int = 0
    files_parsed: int = 0
    seconds: float = 0.0

    def counts(self) -> dict[str, int]:
        return {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "failed": self.failed,
            "unknown": len(self.unknown),
            "malformed": len(self.malformed),
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "folder": self.folder,
            **self.counts(),
            "results_seen": self.results_seen,
            "files_parsed": self.files_parsed,
            "seconds": round(self.seconds, 3),
            "created_models": self.created_models,
            "created_tasks": self.created_tasks,
            "unknown_results": [asdict(p) for p in self.unknown],
            "malformed_results": [asdict(p) for p in self.malformed],
            "ignored": self.ignored,
        }

    def summary_line(self) -> str:
        c = self.counts()
        return (
            f"sync {self.folder}: {c['created']} created, {c['updated']} updated, {c['unchanged']} unchanged, "
            f"{c['failed']} failed, {c['unknown']} unknown, {c['malformed']} malformed "
            f"({self.results_seen} results, {self.seconds:.2f} s)"
        )


@dataclass
class _TaskInfo:
    id: int
    name: str
    suffix: str
    key: str


@dataclass
class _Outcome:
    """What a result's files say: completed (metrics), failed (error) or malformed (reason)."""

    status: str  # completed | failed | malformed
    primary_metric: float | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    reason: str | None = None
    file: str | None = None
    finished_at: dt.datetime | None = None
    judge: str | None = None
    commit: str | None = None


def slugify(name: str) -> str:
    """A catalogue name for a VLMEvalKit name (`Qwen2-VL-7B_Instruct` -> `qwen2-vl-7b_instruct`)."""
    slug = re.sub(r"[^a-z0-9._-]+", "-", name.lower()).strip("-._")[:128] or "unnamed"
    return slug if re.match(SLUG_PATTERN, slug) else f"x{slug}"[:128]


def _parse_time(value: Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        t = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def _eval_id_time(eval_id: str | None) -> dt.datetime | None:
    if not eval_id:
        return None
    for fmt, part in (("%Y%m%d-%H%M%S", eval_id[1:16]), ("%Y%m%d", eval_id[1:9])):
        try:
            return dt.datetime.strptime(part, fmt).replace(tzinfo=dt.UTC)
        except ValueError:
            continue
    return None


def _metric_file(ref: ResultRef, suffix: str) -> str | None:
    """Same choice as `results.metric_file`, from the listing (no glob per result): the exact name, else the
    newest `{model}_{data}_*{suffix}` (judges insert their name)."""
    exact = f"{ref.model}_{ref.data}{suffix}"
    if exact in ref.files:
        return exact
    pre = f"{ref.model}_{ref.data}_"
    cands = [n for n in ref.files if n.startswith(pre) and n.endswith(suffix)]
    return max(cands, key=lambda n: ref.files[n]) if cands else None


def _has_prediction(ref: ResultRef) -> bool:
    return any(f"{ref.model}_{ref.data}.{ext}" in ref.files for ext in ("xlsx", "tsv", "json"))


def _read_metrics(path: str, key: str) -> tuple[float | None, dict[str, float] | None, str | None]:
    """(primary, table, problem) for one metric file; runs in pool workers too."""
    try:
        table = results.read_metric_file(Path(path))
    except VLMEvalFailure as err:
        return None, None, str(err)
    except Exception as err:  # an unexpected file content must not stop the scan
        return None, None, f"metric file {path} is unreadable ({type(err).__name__}: {err})"
    primary = results.pick_primary(table, key)
    if primary is None:
        return (
            None,
            table,
            (f"metric key {key!r} not found in {os.path.basename(path)}; available: {', '.join(list(table)[:15])}"),
        )
    return primary, table, None


def _read_many(
    jobs: list[tuple[str, str]], workers: int
) -> list[tuple[float | None, dict[str, float] | None, str | None]]:
    if workers > 1 and len(jobs) >= PARALLEL_MIN:
        paths, keys = zip(*jobs, strict=True)
        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("fork")) as pool:
            return list(pool.map(_read_metrics, paths, keys, chunksize=max(50, len(jobs) // (workers * 8))))
    return [_read_metrics(p, k) for p, k in jobs]


class _StatusCache:
    """status.json per folder, parsed at most once per scan."""

    def __init__(self) -> None:
        self._cache: dict[str, dict[str, Any] | str] = {}

    def get(self, folder: str, has_status: bool) -> dict[str, Any] | str:
        """The parsed file, {} when there is none, or an error string when it cannot be read."""
        if not has_status:
            return {}
        if folder not in self._cache:
            try:
                self._cache[folder] = results.load_status(Path(folder))
            except VLMEvalFailure as err:
                self._cache[folder] = str(err)
        return self._cache[folder]


def _judge_outcome(ref: ResultRef, task: _TaskInfo, status: dict[str, Any] | str) -> _Outcome | tuple[str, str]:
    """Decide what can be decided without parsing a metric file; else return (metric file path, key)."""
    commit = ref.commit
    if isinstance(status, str):
        return _Outcome("malformed", reason=status, file=f"{ref.folder}/{STATUS_FILE}")
    entry = results.dataset_entry(status, ref.data)
    commit = commit or (status.get("commit") if isinstance(status.get("commit"), str) else None)
    finished = _parse_time(entry.get("updated_at")) or _parse_time(status.get("updated_at"))
    err = results.entry_error(entry)
    if err:
        return _Outcome(
            "failed",
            error=f"VLMEvalKit reported a failure for {ref.model} x {ref.data}: {err}",
            finished_at=finished,
            judge=entry.get("judge_model"),
            commit=commit,
        )
    if not _has_prediction(ref):
        return _Outcome(
            "malformed",
            file=f"{ref.source_path}.xlsx",
            reason=f"missing prediction file {ref.model}_{ref.data}.xlsx (or .tsv/.json) in {ref.folder}",
        )
    mf = _metric_file(ref, task.suffix)
    if mf is None:
        if status and entry and not isinstance(entry.get("metrics"), dict):
            reason = (
                f"status.json records {ref.data} without metrics and there is no "
                f"{ref.model}_{ref.data}*{task.suffix}: scoring did not finish"
            )
            return _Outcome("malformed", file=f"{ref.folder}/{STATUS_FILE}", reason=reason)
        return _Outcome(
            "malformed",
            file=f"{ref.source_path}{task.suffix}",
            reason=f"no metric file {ref.model}_{ref.data}*{task.suffix} (the task's "
            "primary_metric_suffix); scoring did not finish or the suffix is wrong",
        )
    return f"{ref.folder}/{mf}", task.key


def _completed(
    ref: ResultRef,
    status: dict[str, Any] | str,
    mf: str,
    primary: float | None,
    table: dict[str, float] | None,
    problem: str | None,
) -> _Outcome:
    if problem is not None or table is None:
        return _Outcome("malformed", file=mf, reason=problem or f"{mf} has no metrics")
    status = status if isinstance(status, dict) else {}
    entry = results.dataset_entry(status, ref.data)
    metrics: dict[str, Any] = {"table": table, "file": os.path.basename(mf)}
    if isinstance(entry.get("metrics"), dict):
        metrics["status_json"] = entry["metrics"]
    for k in ("primary_metric", "judge_model"):
        if entry.get(k) is not None:
            metrics[k] = entry[k]
    commit = ref.commit or (status.get("commit") if isinstance(status.get("commit"), str) else None)
    finished = _parse_time(entry.get("updated_at")) or _parse_time(status.get("updated_at"))
    return _Outcome(
        "completed",
        primary_metric=primary,
        metrics=metrics,
        file=mf,
        finished_at=finished,
        judge=entry.get("judge_model"),
        commit=commit,
    )


def _guess_suffix(ref: ResultRef) -> str:
    for suffix in METRIC_SUFFIXES:
        if _metric_file(ref, suffix):
            return suffix
    return "_acc.csv"


def _ensure_catalogue(
    engine: Engine | None, unknown_models: set[str], unknown_tasks: dict[str, str], report: SyncReport
) -> None:
    """`create_unknown`: register what the tree has and the catalogue lacks (names slugified, marked as such)."""
    with session_scope(engine) as s:
        for vm in sorted(unknown_models):
            name = slugify(vm)
            if s.scalar(select(Model.id).where(Model.name == name)) is not None:
                name = slugify(f"{vm}-backfill")
            s.add(
                Model(
                    name=name,
                    display_name=vm,
                    vlmeval_model=vm,
                    gpus=1,
                    description=f"created by backfill from {report.folder}",
                )
            )
            report.created_models.append(name)
        for data, suffix in sorted(unknown_tasks.items()):
            name = slugify(data)
            if s.scalar(select(Task.id).where(Task.name == name)) is not None:
                name = slugify(f"{data}-backfill")
            s.add(
                Task(
                    name=name,
                    display_name=data,
                    vlmeval_data=data,
                    primary_metric_suffix=suffix,
                    primary_metric_key="Overall",
                    description=f"created by backfill from {report.folder}",
                )
            )
            report.created_tasks.append(name)


def _catalogue(engine: Engine | None) -> tuple[dict[str, list[tuple[int, str]]], dict[str, list[_TaskInfo]]]:
    with session_scope(engine) as s:
        models: dict[str, list[tuple[int, str]]] = {}
        for mid, name, vm in s.execute(select(Model.id, Model.name, Model.vlmeval_model).order_by(Model.id)):
            models.setdefault(vm, []).append((mid, name))
        tasks: dict[str, list[_TaskInfo]] = {}
        for tid, name, vd, suf, key in s.execute(
            select(Task.id, Task.name, Task.vlmeval_data, Task.primary_metric_suffix, Task.primary_metric_key).order_by(
                Task.id
            )
        ):
            tasks.setdefault(vd, []).append(_TaskInfo(tid, name, suf, key))
    return models, tasks


def _known_sources(
    engine: Engine | None, folder: str
) -> dict[str, tuple[int, int | None, str, float | None, str | None]]:
    like = folder.rstrip("/").replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "/%"
    with session_scope(engine) as s:
        rows = s.execute(
            select(
                EvalRun.source_path,
                EvalRun.id,
                EvalRun.source_mtime_ns,
                EvalRun.status,
                EvalRun.primary_metric,
                EvalRun.error,
            ).where(EvalRun.source_path.like(like, escape="\\"))
        )
        return {sp: (rid, mt, st, pm, er) for sp, rid, mt, st, pm, er in rows}


def sync_outputs(
    folder: str | Path, *, engine: Engine | None = None, create_unknown: bool = False, workers: int | None = None
) -> SyncReport:
    """Scan `folder` (a VLMEvalKit work dir) and record every result not recorded yet. Safe to repeat."""
    import time

    started = time.perf_counter()
    root = os.path.abspath(os.fspath(folder)).rstrip("/") or "/"
    if not os.path.isdir(root):
        raise InvalidRequestError(
            f"{root} is not a folder; give the VLMEvalKit work dir (the --work-dir, whose "
            "sub-folders are named after models)"
        )
    report = SyncReport(folder=root)
    workers = workers if workers is not None else min(os.cpu_count() or 1, 8)
    models, tasks = _catalogue(engine)
    known = _known_sources(engine, root)
    statuses = _StatusCache()

    # 1. listings only: which results are new or changed (an unchanged result costs a dict lookup)
    listings, report.ignored = list_folders(root)
    todo: list[ResultRef] = []
    for lst in listings:
        groups = datasets_in(lst, known=set(tasks))
        refs = results_of(lst, groups)
        pending = [r for r in refs if known.get(r.source_path, (0, None))[1] != r.mtime_ns]
        report.unchanged += len(refs) - len(pending)
        report.results_seen += len(refs)
        if lst.status_mtime_ns is not None and (pending or not refs or any(r.source_path not in known for r in refs)):
            # a failure may be recorded only in status.json (no files): look there for more datasets
            status = statuses.get(lst.path, True)
            names = [n for n in ((status.get("datasets") or {}) if isinstance(status, dict) else {}) if n not in groups]
            if names:
                extra = results_of(lst, {n: {} for n in names})
                fresh = [r for r in extra if known.get(r.source_path, (0, None))[1] != r.mtime_ns]
                report.unchanged += len(extra) - len(fresh)
                report.results_seen += len(extra)
                pending.extend(fresh)
        todo.extend(pending)

    # 2. match to the catalogue; optionally create what is missing
    if create_unknown:
        missing_models = {r.model for r in todo if r.model not in models}
        missing_tasks: dict[str, str] = {}
        for r in todo:
            if r.data not in tasks and r.data not in missing_tasks:
                missing_tasks[r.data] = _guess_suffix(r)
        if missing_models or missing_tasks:
            _ensure_catalogue(engine, missing_models, missing_tasks, report)
            models, tasks = _catalogue(engine)
    matched: list[tuple[ResultRef, int, _TaskInfo]] = []
    for r in todo:
        ms, ts = models.get(r.model, []), tasks.get(r.data, [])
        if len(ms) != 1 or len(ts) != 1:
            if not ms:
                why = (
                    f"no model with vlmeval_model={r.model!r}; register it (POST /api/evals/models, the seed "
                    "file) or sync with --create-unknown"
                )
            elif len(ms) > 1:
                why = f"vlmeval_model={r.model!r} matches several models ({', '.join(n for _, n in ms)})"
            elif not ts:
                why = (
                    f"no task with vlmeval_data={r.data!r}; register it (POST /api/evals/tasks, the seed file) "
                    "or sync with --create-unknown"
                )
            else:
                why = f"vlmeval_data={r.data!r} matches several tasks ({', '.join(t.name for t in ts)})"
            report.unknown.append(Problem(r.source_path, why, r.model, r.data))
            continue
        matched.append((r, ms[0][0], ts[0]))

    # 3. read what must be read: status.json once per folder, metric files (in parallel when many)
    outcomes: dict[str, _Outcome] = {}
    jobs: list[tuple[str, str]] = []
    job_refs: list[ResultRef] = []
    for r, _, t in matched:
        got = _judge_outcome(r, t, statuses.get(r.folder, r.status_mtime_ns is not None))
        if isinstance(got, _Outcome):
            outcomes[r.source_path] = got
        else:
            jobs.append(got)
            job_refs.append(r)
    for r, job, (primary, table, problem) in zip(job_refs, jobs, _read_many(jobs, workers), strict=True):
        outcomes[r.source_path] = _completed(
            r, statuses.get(r.folder, r.status_mtime_ns is not None), job[0], primary, table, problem
        )
    report.files_parsed = len(jobs)

    # 4. write: new rows in bulk, changed ones in place (a flat folder rewritten by a rerun)
    new_rows: list[dict[str, Any]] = []
    for r, model_id, t in matched:
        o = outcomes[r.source_path]
        if o.status == "malformed":
            report.malformed.append(Problem(o.file or r.source_path, o.reason or "malformed", r.model, r.data))
            continue
        row = _row(r, model_id, t, o)
        if r.source_path in known:
            _update(engine, known[r.source_path], row, report)
        else:
            new_rows.append(row)
            report.failed += o.status == "failed"
    _insert(engine, new_rows, report)
    report.seconds = time.perf_counter() - started
    log.info(report.summary_line())
    for p in report.unknown[:50]:
        log.warning("unknown: %s: %s", p.path, p.reason)
    for p in report.malformed[:50]:
        log.warning("malformed: %s: %s", p.path, p.reason)
    return report


def _row(r: ResultRef, model_id: int, t: _TaskInfo, o: _Outcome) -> dict[str, Any]:
    finished = o.finished_at or _eval_id_time(r.eval_id) or dt.datetime.fromtimestamp(r.mtime_ns / 1e9, dt.UTC)
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
        "created_at": _eval_id_time(r.eval_id) or finished,
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


def _insert(engine: Engine | None, rows: list[dict[str, Any]], report: SyncReport) -> None:
    """Batched executemany INSERT ... ON CONFLICT DO NOTHING RETURNING (one compiled statement, insertmanyvalues)."""
    stmt = (
        pg_insert(EvalRun)
        .on_conflict_do_nothing(index_elements=[EvalRun.source_path], index_where=EvalRun.source_path.isnot(None))
        .returning(EvalRun.id, EvalRun.status, EvalRun.source_path, sort_by_parameter_order=True)
    )
    for i in range(0, len(rows), BATCH):
        chunk = rows[i : i + BATCH]
        with session_scope(engine) as s:
            conn = s.connection()
            got = conn.execute(stmt, chunk).all()
            if got:
                conn.execute(
                    pg_insert(EvalRunEvent),
                    [{"run_id": rid, "status": st, "message": f"backfilled from {sp}"} for rid, st, sp in got],
                )
        report.created += len(got)
        report.unchanged += len(chunk) - len(got)  # recorded meanwhile by a concurrent sync


def _update(
    engine: Engine | None,
    known: tuple[int, int | None, str, float | None, str | None],
    row: dict[str, Any],
    report: SyncReport,
) -> None:
    run_id, _, old_status, old_metric, old_error = known
    same = (old_status, old_metric, old_error) == (row["status"], row["primary_metric"], row["error"])
    with session_scope(engine) as s:
        values = {"source_mtime_ns": row["source_mtime_ns"]}
        if not same:
            values.update(
                {
                    k: row[k]
                    for k in (
                        "status",
                        "primary_metric",
                        "metrics",
                        "error",
                        "finished_at",
                        "fingerprint",
                        "vlmeval_version",
                    )
                }
            )
        s.execute(update(EvalRun).where(EvalRun.id == run_id).values(**values))
        if not same:
            s.add(
                EvalRunEvent(
                    run_id=run_id,
                    status=row["status"],
                    message=f"re-synced from {row['source_path']}: was {old_status} "
                    f"(primary metric {old_metric}), now {row['status']} "
                    f"(primary metric {row['primary_metric']})",
                )
            )
    if same:
        report.unchanged += 1
    else:
        report.updated += 1
        report.failed += row["status"] == "failed"
