"""The trackers' client libraries (mlflow-skinny, tensorboard) are the optional extra `trackers`.

A deployment that exports nothing does not install them; an exporter imports its client when it is built and,
where it is missing, fails with `TrackerClientMissing` naming the extra to install (the delivery keeps that
message on the outbox row as its last error, shown by GET /api/evals/exports and `vlmevals exports list`).
"""

from __future__ import annotations

import importlib

TRACKERS_EXTRA = "pip install 'vlmevals[trackers]' -c constraints.txt"


class TrackerClientMissing(RuntimeError):
    """EVALS_EXPORTERS names an exporter whose client library is not installed."""


def import_client(exporter: str, module: str, distribution: str) -> None:
    """Import `module` now, or fail naming what to install (the worker's environment lacks the extra)."""
    try:
        importlib.import_module(module)
    except ImportError as err:
        raise TrackerClientMissing(
            f"EVALS_EXPORTERS names {exporter} but {distribution} is not installed here ({err}); install the "
            f"trackers extra on the Airflow workers: {TRACKERS_EXTRA}"
        ) from err
