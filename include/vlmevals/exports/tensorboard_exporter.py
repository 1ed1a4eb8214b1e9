"""TensorBoard: event files written with SummaryWriter.

A checkpoint with a step lands in its training run's log dir when registered with `tensorboard_dir`, else on
its model's curve, `EVALS_TENSORBOARD_DIR/checkpoints/<model>/<suite>/`, at step = the checkpoint's step; any
other run under `runs/<task>/<model>/` at step = our run id (a pair's runs in order). Each eval run writes one
event file of its own (suffix `.vlmevals-run-<id>-<created ms>`), replaced on re-delivery: never a point twice,
and a late verdict rewrites it. `eval/average` (the checkpoint board's average, once every task of the suite has
a score at that step) has one file per step (`.vlmevals-average-step-<step>`), rewritten by each delivery that
sees the suite complete.
"""

from __future__ import annotations

from pathlib import Path

from vlmevals.core.settings import Settings
from vlmevals.exports.clients import import_client
from vlmevals.exports.records import ExportRecord


def _safe(part: str) -> str:
    return part.replace("/", "_").replace("\\", "_") or "_"


class TensorBoardExporter:
    name = "tensorboard"

    def __init__(self, settings: Settings) -> None:
        import_client(self.name, "tensorboard", "tensorboard")  # torch's SummaryWriter needs it
        self.root = Path(settings.tensorboard_dir)

    def log_dir(self, record: ExportRecord) -> Path:
        if record.in_series and record.training_tensorboard_dir:
            return Path(record.training_tensorboard_dir)  # beside the training run's own curves
        if record.in_series:
            return self.root / "checkpoints" / _safe(record.model) / _safe(record.suite or "-")
        return self.root / "runs" / _safe(record.task) / _safe(record.model)

    def deliver(self, record: ExportRecord) -> str:
        from torch.utils.tensorboard import SummaryWriter  # heavy: only where a delivery happens

        folder = self.log_dir(record)
        suffix = f".vlmevals-run-{record.run_id}-{record.created_key}"  # ids restart with a recreated database
        for old in folder.glob(f"events.out.tfevents.*{suffix}"):
            old.unlink()  # re-delivery rewrites this run's own file
        step = record.checkpoint_step if record.in_series else record.run_id
        wall = record.finished_at.timestamp()
        head = f"eval/{record.task}"
        writer = SummaryWriter(log_dir=str(folder), filename_suffix=suffix)
        try:
            for key, value in sorted(record.numbers().items()):
                tag = head if key == "primary_metric" else f"{head}/{key}"
                writer.add_scalar(tag, value, global_step=step, walltime=wall)
            lines = [f"- {k}: {v}" for k, v in record.tags().items()]
            if record.error:
                lines.append(f"- error: {record.error}")
            writer.add_text(f"{head}/run", "\n".join(lines), global_step=step, walltime=wall)
        finally:
            writer.close()
        if record.in_series and record.suite_average is not None:
            self._average(folder, record)
        written = sorted(folder.glob(f"events.out.tfevents.*{suffix}"))
        return str(written[-1]) if written else str(folder)

    @staticmethod
    def _average(folder: Path, record: ExportRecord) -> None:
        from torch.utils.tensorboard import SummaryWriter

        assert record.checkpoint_step is not None and record.suite_average is not None
        suffix = f".vlmevals-average-step-{record.checkpoint_step}"
        for old in folder.glob(f"events.out.tfevents.*{suffix}"):
            old.unlink()
        wall = (record.average_at or record.finished_at).timestamp()
        writer = SummaryWriter(log_dir=str(folder), filename_suffix=suffix)
        try:
            writer.add_scalar("eval/average", record.suite_average, global_step=record.checkpoint_step, walltime=wall)
        finally:
            writer.close()
