"""POST /api/evals/models with a `serve` spec: stored and shown back; a bad spec is a 422 naming field and fix."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration

SERVED = {
    "name": "served-qwen",
    "display_name": "Qwen2-VL-7B (vLLM, managed)",
    "vlmeval_model": "Qwen2-VL-7B-Instruct",
    "gpus": 2,
    "model_spec": {"class": "Qwen2VLChat", "model_path": "Qwen/Qwen2-VL-7B-Instruct"},
    "serve": {"engine": "vllm", "args": ["--max-model-len", "8192"]},
}


def test_served_model_is_stored_and_shown(clients) -> None:
    r = clients.op.post("/api/evals/models", json=SERVED)
    assert r.status_code == 201, r.text
    serve = {"engine": "vllm", "args": ["--max-model-len", "8192"], "gpus": 2}
    assert serve.items() <= r.json()["serve"].items()
    got = clients.viewer.get("/api/evals/models/served-qwen").json()
    assert got["serve"] == r.json()["serve"] and got["serve"]["startup_timeout_s"] > 0
    listed = {m["name"]: m for m in clients.viewer.get("/api/evals/models?limit=1000").json()["data"]}
    assert listed["served-qwen"]["serve"]["engine"] == "vllm"
    assert listed["demo-tiny-idefics3"]["serve"] is None, "models without serve say so"


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"serve": {"engine": "tgi"}}, "unknown engine 'tgi'; give one of vllm, sglang, lmdeploy, transformers"),
        ({"serve": {"engine": "vllm", "args": ["--port", "1"]}}, "--port is set by the service"),
        ({"serve": {"engine": "vllm", "gpus": 0}}, "greater than or equal to 1"),
        ({"model_spec": {"class": "Qwen2VLChat"}}, "serve needs the weights: give model_spec with model_path"),
        ({"model_spec": None, "endpoint_base_url": "http://127.0.0.1:9/v1"}, "give serve (the service starts"),
    ],
)
def test_bad_serve_is_422_naming_the_fix(clients, change, needle) -> None:
    r = clients.op.post("/api/evals/models", json={**SERVED, "name": "served-bad", **change})
    assert r.status_code == 422, r.text
    assert needle in r.text
    assert clients.viewer.get("/api/evals/models/served-bad").status_code == 404
