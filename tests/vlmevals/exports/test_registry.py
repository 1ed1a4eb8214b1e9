"""Exporters by name, and the message a worker without the `trackers` extra gives."""

from __future__ import annotations

import sys

import pytest
from vlmevals.core.settings import Settings
from vlmevals.exports.clients import TrackerClientMissing
from vlmevals.exports.registry import exporter_for


@pytest.mark.parametrize(("name", "module"), [("mlflow", "mlflow"), ("tensorboard", "tensorboard"), ("wandb", "wandb")])
def test_missing_client_names_the_extra(name: str, module: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # what `import` meets where the package is not installed
    settings = Settings(MLFLOW_TRACKING_URI="http://127.0.0.1:1")
    with pytest.raises(TrackerClientMissing, match=rf"names {name} but .* is not installed.*'vlmevals\[trackers\]'"):
        exporter_for(name, settings)


def test_installed_clients_build_their_exporters(tmp_path) -> None:
    settings = Settings(MLFLOW_TRACKING_URI="http://127.0.0.1:1", EVALS_TENSORBOARD_DIR=str(tmp_path))
    names = ("mlflow", "tensorboard", "wandb")
    assert [exporter_for(n, settings).name for n in names] == list(names)


def test_unknown_exporter_is_refused() -> None:
    with pytest.raises(ValueError, match="no exporter named 'comet'; EVALS_EXPORTERS knows mlflow, tensorboard, wandb"):
        exporter_for("comet", Settings())
