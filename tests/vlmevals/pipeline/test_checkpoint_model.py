"""A run of a checkpoint evaluates the checkpoint's weights: a weights path replaces the model spec's
`model_path` in VLMEvalKit's config, a Hub revision the model's revision; the checkpoint is part of the
fingerprint's hash; a model that cannot take a checkpoint's weights fails at `queue` saying why."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from vlmevals.catalogue.specs import checkpoint_identity, model_spec
from vlmevals.core.errors import InvalidRequestError
from vlmevals.core.settings import Settings
from vlmevals.db.models import Checkpoint, Model
from vlmevals.results import fingerprint
from vlmevals.vlmevalkit.command import ModelSpec, TaskSpec, build_invocation

TASK = TaskSpec("CK_MCQ", "CustomMCQDataset")
SPEC = {"class": "DOCLING", "model_path": "{models_dir}/demo", "max_new_tokens": 1}


@pytest.fixture()
def settings(tmp_path: Path) -> Settings:
    lmu = tmp_path / "LMUData"
    lmu.mkdir()
    (lmu / "CK_MCQ.tsv").write_text("index\tquestion\tA\tB\tanswer\n0\tq\tx\ty\tA\n")
    return Settings.model_validate(
        {"LMUData": str(lmu), "EVALS_MODELS_DIR": str(tmp_path / "models"), "EVALS_JUDGE": "exact_matching"}
    )


def _model(**kw: Any) -> Model:
    values: dict[str, Any] = {"name": "m", "vlmeval_model": "Demo", "model_spec": SPEC, "gpus": 1}
    values.update(kw)
    return Model(launch_mode="single", **values)


def test_weights_path_replaces_model_path_in_the_config(settings: Settings, tmp_path: Path) -> None:
    cp = Checkpoint(id=3, step=100, weights_path=str(tmp_path / "ckpt-100"))
    spec = model_spec(_model(), cp)
    inv = build_invocation(settings=settings, task=TASK, model=spec, work_dir=tmp_path / "w", mode="infer")
    assert inv.config is not None
    kwargs = inv.config["model"]["Demo"]
    assert kwargs["model_path"] == str(tmp_path / "ckpt-100")
    assert kwargs["class"] == "DOCLING" and kwargs["max_new_tokens"] == 1
    assert model_spec(_model()).model_spec == SPEC  # the catalogue's spec is left as it is
    assert json.dumps(SPEC) == json.dumps({"class": "DOCLING", "model_path": "{models_dir}/demo", "max_new_tokens": 1})


def test_a_spec_with_model_key_gets_it_replaced() -> None:
    spec = ModelSpec("X", {"class": "C", "model": "org/x"}).with_weights(weights_path="/w")
    assert spec.model_spec == {"class": "C", "model": "/w"}


def test_hub_revision_replaces_the_revision() -> None:
    cp = Checkpoint(id=4, step=200, hub_revision="step-200")
    spec = model_spec(_model(revision="main", model_spec={"class": "DOCLING", "model_path": "org/tiny"}), cp)
    assert spec.revision == "step-200" and spec.model_spec == {"class": "DOCLING", "model_path": "org/tiny"}


def test_registry_model_with_weights_path_is_refused_naming_it() -> None:
    cp = Checkpoint(id=5, step=1, weights_path="/w")
    with pytest.raises(InvalidRequestError, match=r"checkpoint 5 of model 'm'.*no model_spec.*model_path"):
        model_spec(_model(model_spec=None), cp)


def test_the_checkpoint_changes_the_fingerprint_hash(settings: Settings, tmp_path: Path) -> None:
    model = model_spec(_model())

    def digest(cp: Checkpoint | None) -> tuple[dict[str, Any], str]:
        return fingerprint.compute(
            task=TASK,
            model=model,
            settings=settings,
            judge=None,
            with_environment=False,
            checkpoint=checkpoint_identity(cp),
        )

    fp0, h0 = digest(None)
    fp1, h1 = digest(Checkpoint(id=1, step=100, weights_path="/w/100"))
    _, h1_again = digest(Checkpoint(id=9, step=100, weights_path="/w/100"))  # a new id, the same checkpoint
    _, h2 = digest(Checkpoint(id=2, step=400, weights_path="/w/100"))
    assert "checkpoint" not in fp0["model"]
    assert fp1["model"]["checkpoint"] == {"step": 100, "label": None, "weights_path": "/w/100", "hub_revision": None}
    assert len({h0, h1, h2}) == 3 and h1 == h1_again
