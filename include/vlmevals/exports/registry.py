"""Exporters by name (EVALS_EXPORTERS): each has `name` and `deliver(record) -> tracker reference`.

Each is imported only when built: its tracker's client library is the optional extra `trackers` (exports.clients)."""

from __future__ import annotations

from typing import Protocol

from vlmevals.core.settings import EXPORTERS, Settings
from vlmevals.exports.records import ExportRecord


class Exporter(Protocol):
    name: str

    def deliver(self, record: ExportRecord) -> str:
        """Send one run; return where it landed (tracker run id, event file). Idempotent: it may be called again."""
        ...


def exporter_for(name: str, settings: Settings) -> Exporter:
    if name == "mlflow":
        from vlmevals.exports.mlflow_exporter import MlflowExporter

        return MlflowExporter(settings)
    if name == "tensorboard":
        from vlmevals.exports.tensorboard_exporter import TensorBoardExporter

        return TensorBoardExporter(settings)
    if name == "wandb":
        from vlmevals.exports.wandb_exporter import WandbExporter

        return WandbExporter(settings)
    raise ValueError(f"no exporter named {name!r}; EVALS_EXPORTERS knows {', '.join(EXPORTERS)}")
