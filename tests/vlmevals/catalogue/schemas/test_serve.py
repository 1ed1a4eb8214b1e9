"""The `serve` spec of a model: defaults, and every refusal names the field and the fix."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError
from vlmevals.catalogue.schemas.serve import DEFAULT_IDLE_TIMEOUT_S, DEFAULT_STARTUP_TIMEOUT_S
from vlmevals.catalogue.schemas.tasks_models import ModelCreate, ModelPublic

SPEC = {"class": "DOCLING", "model_path": "/models/tiny"}


def model(**extra: Any) -> dict[str, Any]:
    return {"name": "served-tiny", "display_name": "Tiny", "vlmeval_model": "Tiny", "model_spec": SPEC, **extra}


def error_of(body: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as err:
        ModelCreate.model_validate(body)
    return str(err.value)


def test_defaults_and_gpus_from_the_model() -> None:
    m = ModelCreate.model_validate(model(gpus=2, serve={"engine": "vllm"}))
    assert m.serve is not None
    assert m.serve.model_dump() == {
        "engine": "vllm",
        "args": [],
        "gpus": 2,
        "startup_timeout_s": DEFAULT_STARTUP_TIMEOUT_S,
        "idle_timeout_s": DEFAULT_IDLE_TIMEOUT_S,
    }
    own = ModelCreate.model_validate(model(gpus=1, serve={"engine": "sglang", "gpus": 4, "args": ["--dtype", "bf16"]}))
    assert own.serve is not None and own.serve.gpus == 4 and own.serve.args == ["--dtype", "bf16"]
    assert ModelCreate.model_validate(model()).serve is None, "serve stays optional"


def test_the_stored_spec_reads_back_as_given() -> None:
    """What the API stores (model_dump) is what the model's API output shows (ModelPublic from the row)."""
    stored = ModelCreate.model_validate(model(serve={"engine": "transformers", "idle_timeout_s": 30})).model_dump()
    row = {**stored, "id": 1, "created_at": "2026-12-06T00:00:00Z", "suite": None}
    public = ModelPublic.model_validate(row)
    assert public.serve is not None and public.serve.engine == "transformers" and public.serve.idle_timeout_s == 30
    assert public.model_dump(mode="json")["serve"]["gpus"] == 1


@pytest.mark.parametrize(
    ("serve", "needles"),
    [
        ({"engine": "tgi"}, ["unknown engine 'tgi'", "vllm, sglang, lmdeploy, transformers", "serve.engine"]),
        ({}, ["serve.engine", "Field required"]),
        ({"engine": "vllm", "args": "--dtype bf16"}, ["serve.args", "list"]),
        ({"engine": "vllm", "args": [1]}, ["serve.args.0"]),
        ({"engine": "vllm", "args": ["--x\n"]}, ["serve.args.0"]),
        ({"engine": "vllm", "gpus": 0}, ["serve.gpus", "greater than or equal to 1"]),
        ({"engine": "vllm", "gpus": "2"}, ["serve.gpus"]),
        ({"engine": "vllm", "startup_timeout_s": 0}, ["serve.startup_timeout_s"]),
        ({"engine": "vllm", "idle_timeout_s": -1}, ["serve.idle_timeout_s"]),
        ({"engine": "vllm", "surprise": 1}, ["serve.surprise"]),
        ({"engine": "vllm", "args": ["--port", "9"]}, ["--port is set by the service", "leave it out"]),
        ({"engine": "sglang", "args": ["--tp-size=2"]}, ["--tp-size=2 is set by the service"]),
        ({"engine": "lmdeploy", "args": ["--server-port", "1"]}, ["--server-port is set by the service"]),
        ({"engine": "transformers", "args": ["--host", "0.0.0.0"]}, ["--host is set by the service"]),
    ],
)
def test_bad_spec_names_the_field_and_the_fix(serve: dict[str, Any], needles: list[str]) -> None:
    text = error_of(model(serve=serve))
    for needle in needles:
        assert needle in text, text


def test_engine_args_the_service_does_not_set_pass() -> None:
    """A flag reserved for one engine is the engine's own argument for another (--tp is LMDeploy's, not vLLM's)."""
    m = ModelCreate.model_validate(model(serve={"engine": "vllm", "args": ["--max-model-len", "8192", "--tp-x"]}))
    assert m.serve is not None and m.serve.args == ["--max-model-len", "8192", "--tp-x"]


def test_serve_needs_weights_and_no_endpoint() -> None:
    assert "serve needs the weights: give model_spec with model_path" in error_of(
        {**model(serve={"engine": "vllm"}), "model_spec": None}
    )
    assert "model_path" in error_of(model(serve={"engine": "vllm"}, model_spec={"class": "DOCLING", "model": "x"}))
    no_spec = {k: v for k, v in model().items() if k != "model_spec"}
    text = error_of({**no_spec, "endpoint_base_url": "http://127.0.0.1:8000/v1", "serve": {"engine": "vllm"}})
    assert "give serve (the service starts the engine and chooses its endpoint) or endpoint_base_url" in text
    assert "serve.gpus: the model has gpus 0" in error_of(model(gpus=0, serve={"engine": "vllm"}))
    assert ModelCreate.model_validate(model(gpus=0, serve={"engine": "transformers", "gpus": 1})).serve is not None
