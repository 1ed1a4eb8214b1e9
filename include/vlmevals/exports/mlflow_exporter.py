"""MLflow: one tracker run per eval run, a checkpoint's training run (mlflow_run_id), or a model's checkpoint
curve; through MlflowClient only.

A run is found again by its tags `vlmevals.run_id` and `vlmevals.run_created` (ids restart when our database
is recreated), a checkpoint curve by `vlmevals.series`. What was sent is marked with the record's `outcome`
(creation key, status, verdict): the tag `vlmevals.delivered` on a run's own tracker run, `vlmevals.eval_run.<id>`
on a curve. A delivery whose outcome is marked already writes nothing; a late verdict changes the outcome, so the
same tracker run is updated. Metrics carry the run's finish time as their timestamp (MLflow keeps one row per
identical key, step, timestamp and value), `regression` the delivery time (a changed verdict is the newest
point), `eval/average` the newest finish time among its tasks. So a delivery repeated after a crash or a
tracker outage duplicates neither runs nor points.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from vlmevals.core.settings import Settings
from vlmevals.core.vocabulary import RunStatus
from vlmevals.exports.clients import import_client
from vlmevals.exports.records import ExportRecord, summary_json

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Run

# the outbox retries with backoff: one quick attempt per delivery, not MLflow's minutes of HTTP retries
_CLIENT_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
_MAX_TAG = 5000


class MlflowExporter:
    name = "mlflow"

    def __init__(self, settings: Settings) -> None:
        if not settings.mlflow_tracking_uri:
            raise ValueError("EVALS_EXPORTERS names mlflow but MLFLOW_TRACKING_URI is not set; set it to the server")
        for key, value in _CLIENT_DEFAULTS.items():
            os.environ.setdefault(key, value)
        import_client(self.name, "mlflow", "mlflow-skinny")
        from mlflow import MlflowClient  # heavy: only where a delivery happens

        self.client: MlflowClient = MlflowClient(tracking_uri=settings.mlflow_tracking_uri)
        self.settings = settings

    def deliver(self, record: ExportRecord) -> str:
        if record.in_series and record.training_mlflow_run:
            return self._into_training_run(record, record.training_mlflow_run)
        return self._into_series(record) if record.in_series else self._own_run(record)

    def _experiment(self, name: str) -> str:
        from mlflow.exceptions import MlflowException

        found = self.client.get_experiment_by_name(name)
        if found is not None:
            return str(found.experiment_id)
        try:
            return str(self.client.create_experiment(name))
        except MlflowException:  # created meanwhile by another deliverer
            again = self.client.get_experiment_by_name(name)
            if again is None:
                raise
            return str(again.experiment_id)

    def _find(self, experiment_id: str, tags: dict[str, str]) -> Run | None:
        where = " and ".join(f"tags.`{k}` = '{v}'" for k, v in tags.items())
        runs = self.client.search_runs([experiment_id], filter_string=where, max_results=1)
        return runs[0] if runs else None

    def _own_run(self, record: ExportRecord) -> str:
        exp = self._experiment(self.settings.mlflow_experiment.format(task=record.task, model=record.model))
        run = self._find(exp, {"vlmevals.run_id": str(record.run_id), "vlmevals.run_created": record.created_key})
        if run is not None and run.data.tags.get("vlmevals.delivered") == record.outcome:
            return str(run.info.run_id)
        tags = record.tags()
        if run is None:
            name = f"{record.model} · {record.task} #{record.run_id}"
            run = self.client.create_run(exp, start_time=_ms(record), tags=tags, run_name=name)
        run_id = str(run.info.run_id)
        params = {k: v[:6000] for k, v in tags.items() if not k.startswith("vlmevals.")}
        fresh = {k: v for k, v in params.items() if k not in run.data.params}  # params are write-once
        extra = {"error": record.error[:_MAX_TAG]} if record.error else {}
        self._log(run_id, record, prefix="", step=0, params=fresh, tags=extra)
        self._artifacts(run_id, record, "")
        status = "FINISHED" if record.status == RunStatus.COMPLETED else "FAILED"
        self.client.set_terminated(run_id, status=status, end_time=_ms(record))
        self.client.set_tag(run_id, "vlmevals.delivered", record.outcome)
        return run_id

    def _into_series(self, record: ExportRecord) -> str:
        suite = record.suite or "-"
        exp = self._experiment(self.settings.mlflow_checkpoint_experiment.format(model=record.model, suite=suite))
        series = f"{record.model}@{suite}"
        run = self._find(exp, {"vlmevals.series": series})
        if run is None:
            tags = {"vlmevals.series": series, "model": record.model, "suite": suite}
            run = self.client.create_run(exp, tags=tags, run_name=f"{record.model} checkpoints ({suite})")
        return self._onto_curve(run, record, finish=True)

    def _into_training_run(self, record: ExportRecord, run_id: str) -> str:
        """The checkpoint's own training run (registered with mlflow_run_id): eval curves beside the loss."""
        from mlflow.exceptions import MlflowException

        try:
            run = self.client.get_run(run_id)
        except MlflowException as err:
            raise LookupError(
                f"checkpoint's mlflow_run_id {run_id} is not a run of {self.settings.mlflow_tracking_uri}: {err}"
            ) from err
        return self._onto_curve(run, record, finish=False)  # its status belongs to the training job

    def _onto_curve(self, run: Run, record: ExportRecord, *, finish: bool) -> str:
        """`eval/<task>` (and `eval/average` once the suite is complete) at the checkpoint's step; the tag
        `vlmevals.eval_run.<id>` marks what was sent."""
        run_id = str(run.info.run_id)
        marker = f"vlmevals.eval_run.{record.run_id}"
        outcome = (record.outcome + (f": {record.error}" if record.error else ""))[:_MAX_TAG]
        if run.data.tags.get(marker) == outcome:
            return run_id
        assert record.checkpoint_step is not None
        self._log(run_id, record, prefix=f"eval/{record.task}", step=record.checkpoint_step)
        self._artifacts(run_id, record, f"eval_runs/{record.run_id}")
        if finish:
            self.client.set_terminated(run_id, status="FINISHED")
        self.client.set_tag(run_id, marker, outcome)
        return run_id

    def _log(
        self,
        run_id: str,
        record: ExportRecord,
        *,
        prefix: str,
        step: int,
        params: dict[str, str] | None = None,
        tags: dict[str, str] | None = None,
    ) -> None:
        """One log_batch (MLflow takes up to 1,000 metrics a call): round trips are most of a delivery's time."""
        from mlflow.entities import Metric, Param, RunTag

        ts, now = _ms(record), int(time.time() * 1000)
        numbers = record.numbers()
        verdict = numbers.pop("regression", None)
        stamped: list[tuple[str, float, int]] = []
        if prefix:  # on a curve: the primary metric is the curve itself (`eval/<task>`)
            primary = numbers.pop("primary_metric", None)
            numbers = {f"{prefix}/{k}": v for k, v in numbers.items()}
            if primary is not None:
                numbers[prefix] = primary
            if record.suite_average is not None and record.average_at is not None:
                stamped.append(("eval/average", record.suite_average, int(record.average_at.timestamp() * 1000)))
        stamped += [(k, v, ts) for k, v in numbers.items()]
        if verdict is not None:
            stamped.append((f"{prefix}/regression" if prefix else "regression", verdict, now))
        metrics = [Metric(key=k, value=v, timestamp=t, step=step) for k, v, t in sorted(stamped)]
        first_params = [Param(k, v) for k, v in (params or {}).items()]
        first_tags = [RunTag(k, v) for k, v in (tags or {}).items()]
        for i in range(0, max(len(metrics), 1), 900):
            batch = metrics[i : i + 900]
            self.client.log_batch(run_id, metrics=batch, params=first_params, tags=first_tags)
            first_params, first_tags = [], []

    def _artifacts(self, run_id: str, record: ExportRecord, path: str) -> None:
        """The metric file and our record of the run, uploaded in one call."""
        with tempfile.TemporaryDirectory(prefix="vlmevals-export-") as tmp:
            folder = Path(tmp)
            (folder / "vlmevals_result.json").write_text(json.dumps(summary_json(record), indent=2, default=str))
            if record.metric_file is not None:
                shutil.copy2(record.metric_file, folder / record.metric_file.name)
            self.client.log_artifacts(run_id, tmp, path or None)


def _ms(record: ExportRecord) -> int:
    return int(record.finished_at.timestamp() * 1000)
