"""What one result's files say, decided from the folder listing first and from its files only when needed:
completed (metrics), failed (VLMEvalKit's recorded error) or malformed (a reason naming the file)."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from vlmevals.backfill.reading import Job, Read
from vlmevals.backfill.scanner import STATUS_FILE, ResultRef
from vlmevals.core.errors import VLMEvalFailure
from vlmevals.core.vocabulary import RunStatus
from vlmevals.results.samples.parse import pick_result_file
from vlmevals.vlmevalkit import outputs

INFER_STATUSES = ("pending", "infer")  # what VLMEvalKit's status.json says before a prediction file exists
METRIC_SUFFIXES = ("_acc.csv", "_score.csv", "_acc.xlsx", "_score.xlsx", "_acc.json", "_score.json")


@dataclass
class TaskInfo:
    id: int
    name: str
    suffix: str
    key: str
    scale: float = 1.0  # tasks.metric_scale, for the per-sample summary


@dataclass
class Outcome:
    """What a result's files say: completed (metrics), failed (error) or malformed (reason)."""

    status: str  # a final RunStatus (completed | failed: stored as the run's) | malformed | incomplete | not_scored
    primary_metric: float | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    reason: str | None = None
    file: str | None = None
    finished_at: dt.datetime | None = None
    judge: str | None = None
    commit: str | None = None
    samples: int | None = None  # incomplete: the samples inference reached
    sample_rows: list[tuple[Any, ...]] | None = None  # completed: the per-sample rows to store (COPY rows)
    sample_columns: dict[str, Any] = field(default_factory=dict)  # completed: eval_runs' samples summary


def _parse_time(value: Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        t = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


@lru_cache(maxsize=4096)
def eval_id_time(eval_id: str | None) -> dt.datetime | None:
    """A T folder's time (cached: every result of a folder asks, and strptime is slow)."""
    if not eval_id:
        return None
    for fmt, part in (("%Y%m%d-%H%M%S", eval_id[1:16]), ("%Y%m%d", eval_id[1:9])):
        try:
            return dt.datetime.strptime(part, fmt).replace(tzinfo=dt.UTC)
        except ValueError:
            continue
    return None


def _metric_file(ref: ResultRef, suffix: str) -> str | None:
    """Same choice as `outputs.metric_file`, from the listing (no glob per result): the exact name, else the
    newest `{model}_{data}_*{suffix}` (judges insert their name)."""
    exact = f"{ref.model}_{ref.data}{suffix}"
    if exact in ref.files:
        return exact
    pre = f"{ref.model}_{ref.data}_"
    cands = [n for n in ref.files if n.startswith(pre) and n.endswith(suffix)]
    return max(cands, key=lambda n: ref.files[n]) if cands else None


def _has_prediction(ref: ResultRef) -> bool:
    return any(f"{ref.model}_{ref.data}.{ext}" in ref.files for ext in ("xlsx", "tsv", "json"))


class StatusCache:
    """status.json per folder, parsed at most once per scan."""

    def __init__(self) -> None:
        self._cache: dict[str, dict[str, Any] | str] = {}

    def get(self, folder: str, has_status: bool) -> dict[str, Any] | str:
        """The parsed file, {} when there is none, or an error string when it cannot be read."""
        if not has_status:
            return {}
        if folder not in self._cache:
            try:
                self._cache[folder] = outputs.load_status(Path(folder))
            except VLMEvalFailure as err:
                self._cache[folder] = str(err)
        return self._cache[folder]


def _provenance(ref: ResultRef, status: dict[str, Any], entry: dict[str, Any]) -> tuple[str | None, dt.datetime | None]:
    """(toolkit commit, finish time) of a result, from the folder name and status.json."""
    commit = ref.commit or (status.get("commit") if isinstance(status.get("commit"), str) else None)
    return commit, _parse_time(entry.get("updated_at")) or _parse_time(status.get("updated_at"))


def _no_metric_file(ref: ResultRef, task: TaskInfo, status: dict[str, Any], entry: dict[str, Any]) -> Outcome:
    """Predictions without a score: scoring never finished (or, without status.json, the suffix may be wrong)."""
    if status and entry and not isinstance(entry.get("metrics"), dict):
        reason = (
            f"predictions but no score: status.json records {ref.data} as {entry.get('status') or 'unscored'!r} "
            f"without metrics and there is no {ref.model}_{ref.data}*{task.suffix}; scoring did not finish "
            "(run VLMEvalKit with --mode eval --reuse on this folder, or evaluate the pair again)"
        )
        return Outcome("not_scored", file=f"{ref.folder}/{STATUS_FILE}", reason=reason)
    return Outcome(
        "not_scored",
        file=f"{ref.source_path}{task.suffix}",
        reason=f"predictions but no metric file {ref.model}_{ref.data}*{task.suffix} (the task's "
        "primary_metric_suffix); scoring did not finish or the suffix is wrong",
    )


def _incomplete(ref: ResultRef, entry: dict[str, Any]) -> Outcome | None:
    """Inference stopped before the prediction file (status `infer`/`pending`, or partial pickles only)."""
    reached = outputs.count_partial(Path(ref.folder), ref.model, ref.data)
    if entry.get("status") not in INFER_STATUSES and not reached:
        return None
    return Outcome(
        "incomplete",
        file=f"{ref.folder}/{STATUS_FILE}" if entry else ref.source_path,
        reason=f"inference stopped after {reached} samples (status {entry.get('status') or 'unknown'!r}, partial "
        "results only, no prediction file); resume it with VLMEvalKit's --reuse or evaluate the pair again",
        samples=reached,
    )


def judge_outcome(ref: ResultRef, task: TaskInfo, status: dict[str, Any] | str) -> Outcome | Job:
    """Decide what can be decided without parsing a metric file; else the files to read (the per-sample file
    chosen from the listing: no stat or glob per result)."""
    if isinstance(status, str):
        return Outcome("malformed", reason=status, file=f"{ref.folder}/{STATUS_FILE}")
    entry = outputs.dataset_entry(status, ref.data)
    err = outputs.entry_error(entry)
    if err:
        commit, finished = _provenance(ref, status, entry)
        return Outcome(
            RunStatus.FAILED,
            error=f"VLMEvalKit reported a failure for {ref.model} x {ref.data}: {err}",
            finished_at=finished,
            judge=entry.get("judge_model"),
            commit=commit,
        )
    if not _has_prediction(ref):
        if (stopped := _incomplete(ref, entry)) is not None:
            return stopped
        return Outcome(
            "malformed",
            file=f"{ref.source_path}.xlsx",
            reason=f"missing prediction file {ref.model}_{ref.data}.xlsx (or .tsv/.json) in {ref.folder}",
        )
    mf = _metric_file(ref, task.suffix)
    if mf is None:
        return _no_metric_file(ref, task, status, entry)
    sf = pick_result_file(ref.files, ref.model, ref.data)
    return Job(f"{ref.folder}/{mf}", task.key, f"{ref.folder}/{sf}" if sf else None, task.scale)


def _with_samples(o: Outcome, samples: Any) -> Outcome:
    """The per-sample read on the outcome, as the pipeline's ingest records it: rows and summary, or the
    reason in metrics["samples_error"] (the official score stays)."""
    if isinstance(samples, str):
        o.metrics["samples_error"] = samples
    elif samples is not None:
        o.sample_rows, o.metrics["samples"], o.sample_columns = samples
    return o


def completed_outcome(ref: ResultRef, status: dict[str, Any] | str, mf: str, read: Read) -> Outcome:
    """The outcome of a result whose files were read (`read.problem`: why the metric file gave no score)."""
    if read.problem is not None or read.table is None:
        return Outcome("malformed", file=mf, reason=read.problem or f"{mf} has no metrics")
    status = status if isinstance(status, dict) else {}
    entry = outputs.dataset_entry(status, ref.data)
    commit, finished = _provenance(ref, status, entry)
    o = Outcome(
        RunStatus.COMPLETED,
        primary_metric=read.primary,
        metrics=outputs.metrics_record(read.table, os.path.basename(mf), entry),
        file=mf,
        finished_at=finished,
        judge=entry.get("judge_model"),
        commit=commit,
    )
    return _with_samples(o, read.samples)


def guess_suffix(ref: ResultRef) -> str:
    for suffix in METRIC_SUFFIXES:
        if _metric_file(ref, suffix):
            return suffix
    return "_acc.csv"
