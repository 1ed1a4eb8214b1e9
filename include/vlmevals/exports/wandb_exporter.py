"""Weights & Biases: one W&B run per eval run, a checkpoint's training run (wandb_run_path), or a model's
checkpoint curve; through the wandb client only (`wandb.init`, `run.log`, `run.summary`).

W&B keeps a run's history append-only and its `_step` strictly increasing, and a training run is usually far
past a checkpoint's step when its scores arrive (checkpoints may also be scored out of order). So curves use
W&B's own answer: `checkpoint_step` is a metric and the x-axis of `eval/*` (`define_metric(step_metric=...)`);
each delivery logs one row `{checkpoint_step, eval/<task>, eval/<task>/..., eval/average}`.

Found again, not duplicated: a W&B run id is ours, derived from our run id and its creation time (an eval
run's own run) or the model and suite (a curve), and `wandb.init(id=..., resume="allow")` reopens it; an eval
run's numbers go to its summary and config, which a re-delivery overwrites (a late verdict updates the same
run). History rows cannot be overwritten: online, the summary key `vlmevals/eval_run/<id>` marks what a curve
was sent and an unchanged re-delivery logs nothing; offline (nothing to read back) a re-sent checkpoint run adds
a row at the same `checkpoint_step`.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vlmevals.core.settings import Settings
from vlmevals.core.vocabulary import RunStatus
from vlmevals.exports.clients import import_client
from vlmevals.exports.records import ExportRecord, summary_json

if TYPE_CHECKING:
    from wandb.sdk.wandb_run import Run

CHECKPOINT_AXIS = "checkpoint_step"
_ID_CHARS = re.compile(r"[^A-Za-z0-9_-]+")


def own_run_id(record: ExportRecord) -> str:
    """Our run id alone is not an identity across a recreated database; with its creation time it is."""
    return f"vlmevals-{record.run_id}-{record.created_key}"


def series_run_id(record: ExportRecord) -> str:
    """One W&B run per (model, suite) curve; a hash keeps any model name within W&B's id alphabet."""
    key = f"{record.model}@{record.suite or '-'}"
    readable = _ID_CHARS.sub("-", key)[:40]
    return f"vlmevals-ckpt-{readable}-{hashlib.sha256(key.encode()).hexdigest()[:8]}"


class WandbExporter:
    name = "wandb"

    def __init__(self, settings: Settings) -> None:
        import_client(self.name, "wandb", "wandb")
        self.settings = settings

    def deliver(self, record: ExportRecord) -> str:
        if record.in_series and record.training_wandb_run:
            entity, project, run_id = record.training_wandb_run.split("/")
            return self._onto_curve(record, entity=entity, project=project, run_id=run_id, own=False)
        if record.in_series:
            return self._onto_curve(record, entity=None, project=None, run_id=series_run_id(record), own=True)
        return self._own_run(record)

    def _init(self, *, run_id: str, entity: str | None, project: str | None, **kw: Any) -> Run:
        import wandb

        folder = Path(self.settings.wandb_dir)
        folder.mkdir(parents=True, exist_ok=True)
        quiet = wandb.Settings(silent=True, console="off", x_disable_stats=True, x_disable_meta=True)
        return wandb.init(
            id=run_id,
            resume="allow",
            entity=entity or self.settings.wandb_entity,
            project=project or self.settings.wandb_project,
            mode=self.settings.wandb_mode,
            dir=str(folder),
            settings=quiet,
            reinit="create_new",
            **kw,
        )

    def _own_run(self, record: ExportRecord) -> str:
        """Config (task, model, checkpoint, suite, judge, fingerprint, link) and summary (every number)."""
        params = {k: v for k, v in record.tags().items() if not k.startswith("vlmevals.")}
        config = {**params, "vlmevals.run_id": record.run_id, "vlmevals.link": record.link}
        tags = [record.task, record.status] + (["regression"] if record.regression else [])
        run = self._init(
            run_id=own_run_id(record),
            entity=None,
            project=None,
            name=f"{record.model} · {record.task} #{record.run_id}",
            group=record.task,
            job_type="eval",
            config=config,
            tags=tags,
        )
        try:
            run.config.update(config, allow_val_change=True)  # a resumed run keeps its first config otherwise
            run.tags = tuple(tags)
            summary: dict[str, Any] = dict(record.numbers())
            summary["vlmevals/outcome"] = record.outcome
            if record.error:
                summary["error"] = record.error
            run.summary.update(summary)
            self._save_result(run, record)
            ref = _ref(run)
        finally:
            run.finish(exit_code=0 if record.status == RunStatus.COMPLETED else 1)
        return ref

    def _onto_curve(
        self, record: ExportRecord, *, entity: str | None, project: str | None, run_id: str, own: bool
    ) -> str:
        """One history row against `checkpoint_step`; the training job's own run keeps its name and state."""
        extra: dict[str, Any] = {}
        if own:
            extra = {"name": f"{record.model} checkpoints ({record.suite or '-'})", "job_type": "eval-curve"}
            extra["config"] = {"model": record.model, "suite": record.suite or "-"}
        run = self._init(run_id=run_id, entity=entity, project=project, **extra)
        try:
            marker = f"vlmevals/eval_run/{record.run_id}"
            outcome = record.outcome + (f": {record.error}" if record.error else "")
            if run.summary.get(marker) != outcome:
                run.define_metric(CHECKPOINT_AXIS)
                run.define_metric("eval/*", step_metric=CHECKPOINT_AXIS)
                run.log(_curve_row(record))
                run.summary.update({marker: outcome})
            ref = _ref(run)
        finally:
            run.finish()
        return ref

    @staticmethod
    def _save_result(run: Run, record: ExportRecord) -> None:
        """Our record of the run and its metric file, as run files (W&B keeps them with the run)."""
        folder = Path(run.dir)
        (folder / "vlmevals_result.json").write_text(json.dumps(summary_json(record), indent=2, default=str))
        run.save(str(folder / "vlmevals_result.json"), base_path=str(folder), policy="now")
        if record.metric_file is not None:
            run.save(str(record.metric_file), base_path=str(record.metric_file.parent), policy="now")


def _curve_row(record: ExportRecord) -> dict[str, float | int]:
    head = f"eval/{record.task}"
    row: dict[str, float | int] = {
        head if k == "primary_metric" else f"{head}/{k}": v for k, v in record.numbers().items()
    }
    if record.suite_average is not None:
        row["eval/average"] = record.suite_average
    row[CHECKPOINT_AXIS] = record.checkpoint_step or 0
    return row


def _ref(run: Run) -> str:
    """entity/project/run_id (offline: the entity is what the settings named, maybe empty) and the run folder."""
    return f"{run.entity or ''}/{run.project}/{run.id} {Path(run.dir).parent}"
