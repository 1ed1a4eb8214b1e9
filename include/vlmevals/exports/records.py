"""What an exporter delivers: one eval run, read once from our tables into plain values."""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from vlmevals.core.settings import get_settings
from vlmevals.core.vocabulary import RunStatus
from vlmevals.db.models import EvalRun
from vlmevals.results.checkpoint_scores import checkpoint_scores

_KEY_CHARS = re.compile(r"[^A-Za-z0-9_\-./ ]+")


def metric_key(name: str) -> str:
    """A VLMEvalKit metric name ('split=dev|Overall') as a key every tracker accepts ('split_dev_Overall')."""
    return _KEY_CHARS.sub("_", name).strip("_") or "metric"


@dataclass(frozen=True)
class ExportRecord:
    run_id: int
    status: str  # completed | failed
    task: str
    model: str
    finished_at: dt.datetime
    created_at: dt.datetime
    primary_metric: float | None = None
    categories: dict[str, float] = field(default_factory=dict)  # tracker-safe key -> value
    ci_low: float | None = None
    ci_high: float | None = None
    samples_total: int | None = None
    samples_failed: int | None = None
    regression: bool | None = None  # None: no verdict (not checked, or no baseline): trackers get no number
    error: str | None = None
    checkpoint_step: int | None = None
    checkpoint_label: str | None = None
    training_mlflow_run: str | None = None  # the checkpoint's training run: scores go there at the step
    training_tensorboard_dir: str | None = None
    training_wandb_run: str | None = None  # entity/project/run_id
    checkpoint_id: int | None = None
    suite: str | None = None
    judge: str | None = None
    fingerprint_hash: str | None = None
    link: str = ""
    metric_file: Path | None = None
    suite_average: float | None = None  # eval/average at the checkpoint's step, once every suite task has a score
    average_at: dt.datetime | None = None  # the newest of those scores' finish times (the average's timestamp)

    @property
    def created_key(self) -> str:
        """Our run id alone is not an identity across a recreated database; with its creation time (ms) it is."""
        return str(int(self.created_at.timestamp() * 1000))

    @property
    def in_series(self) -> bool:
        """A checkpoint with a step goes on its model's curve (one tracker run per model and suite)."""
        return self.checkpoint_step is not None

    def numbers(self) -> dict[str, float]:
        """Every number worth a chart: the primary metric, each category, CI bounds, counts, the verdict."""
        out = {f"category/{k}": v for k, v in self.categories.items()}
        extra = {
            "primary_metric": self.primary_metric,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "samples_total": self.samples_total,
            "samples_failed": self.samples_failed,
        }
        out.update({k: float(v) for k, v in extra.items() if v is not None})
        if self.status == RunStatus.COMPLETED and self.regression is not None:
            out["regression"] = 1.0 if self.regression else 0.0
        return out

    @property
    def outcome(self) -> str:
        """What a tracker was last sent of this run (creation key, status, verdict): a tracker run marked with
        the same outcome has it all, and a late verdict changes it, so the run is sent again."""
        verdict = {None: "unchecked", True: "regression", False: "no-regression"}[self.regression]
        return f"{self.created_key} {self.status} {verdict}"

    def tags(self) -> dict[str, str]:
        """Searchable identity: `vlmevals.run_id` finds the tracker run again on re-delivery."""
        raw = {
            "vlmevals.run_id": str(self.run_id),
            "vlmevals.run_created": self.created_key,
            "vlmevals.status": self.status,
            "task": self.task,
            "model": self.model,
            "checkpoint.step": self.checkpoint_step,
            "checkpoint.label": self.checkpoint_label,
            "suite": self.suite,
            "judge": self.judge,
            "fingerprint": self.fingerprint_hash,
            "vlmevals.link": self.link,
        }
        return {k: str(v) for k, v in raw.items() if v is not None and v != ""}


def _categories(table: Any) -> dict[str, float]:
    if not isinstance(table, dict):
        return {}
    return {metric_key(str(k)): float(v) for k, v in table.items() if isinstance(v, int | float)}


def _metric_file(run: EvalRun) -> Path | None:
    name = (run.metrics or {}).get("file")
    if not name or not run.artifacts_dir:
        return None
    path = Path(run.artifacts_dir) / run.model.vlmeval_model / str(name)
    return path if path.is_file() else None


def leaderboard_link(task: str, run_id: int) -> str:
    base = get_settings().public_url.rstrip("/")
    return f"{base}/api/evals/ui/leaderboard?task={quote(task, safe='')}&run={run_id}"


def load_record(session: Session, run_id: int) -> ExportRecord:
    run = session.get(EvalRun, run_id)
    if run is None:
        raise LookupError(f"eval run {run_id} no longer exists")
    fp_judge = ((run.fingerprint or {}).get("judge") or {}).get("name")
    ckpt = run.checkpoint
    average, average_at = suite_average(session, run) if ckpt and ckpt.step is not None else (None, None)
    return ExportRecord(
        run_id=run.id,
        status=run.status,
        task=run.task.name,
        model=run.model.name,
        finished_at=run.finished_at or dt.datetime.now(dt.UTC),
        created_at=run.created_at,
        primary_metric=run.primary_metric,
        categories=_categories((run.metrics or {}).get("table")),
        ci_low=run.ci_low,
        ci_high=run.ci_high,
        samples_total=run.samples_total,
        samples_failed=run.samples_failed,
        regression=bool(run.regression) if run.regression_detail is not None else None,
        error=run.error,
        checkpoint_step=ckpt.step if ckpt else None,
        checkpoint_label=ckpt.label if ckpt else None,
        training_mlflow_run=ckpt.mlflow_run_id if ckpt else None,
        training_tensorboard_dir=ckpt.tensorboard_dir if ckpt else None,
        training_wandb_run=ckpt.wandb_run_path if ckpt else None,
        checkpoint_id=ckpt.id if ckpt else None,
        suite=run.model.suite.name if run.model.suite else None,
        judge=(run.metrics or {}).get("judge_model") or fp_judge,
        fingerprint_hash=run.fingerprint_hash,
        link=leaderboard_link(run.task.name, run.id),
        metric_file=_metric_file(run),
        suite_average=average,
        average_at=average_at,
    )


def suite_average(session: Session, run: EvalRun) -> tuple[float | None, dt.datetime | None]:
    """The checkpoint board's average (0-100, the suite's weights; results.checkpoint_scores) of the run's
    checkpoint, only once every task of the model's suite has a counted score there: a partial mean would
    jump as tasks arrive. With it, the newest finish time of those scores, so every delivery that sees the
    same average sends the same point."""
    suite = run.model.suite
    if suite is None or run.checkpoint_id is None:
        return None, None
    scores = checkpoint_scores(session, run.model.name, suite.name)
    row = next((r for r in scores.checkpoints if r.id == run.checkpoint_id), None)
    if row is None or row.average is None or row.coverage < len(scores.tasks):
        return None, None
    ids = [cell.run_id for cell in row.scores.values() if cell is not None]
    latest = session.scalar(select(func.max(EvalRun.finished_at)).where(EvalRun.id.in_(ids)))
    return row.average, latest


def summary_json(record: ExportRecord) -> dict[str, Any]:
    """The record as the JSON artifact beside the metric file (what a reader needs without our database)."""
    out = {k: getattr(record, k) for k in record.__dataclass_fields__ if k != "metric_file"}
    out["finished_at"], out["created_at"] = record.finished_at.isoformat(), record.created_at.isoformat()
    out["metric_file"] = os.fspath(record.metric_file) if record.metric_file else None
    return out
