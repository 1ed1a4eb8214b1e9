"""A served model through the seed file into the models table (real PostgreSQL), and the table's own rule."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from vlmevals.catalogue.schemas.tasks_models import ModelPublic
from vlmevals.catalogue.seed import seed
from vlmevals.catalogue.store import get_model

pytestmark = pytest.mark.integration

SEED = """models:
  - name: served-tiny
    display_name: Served tiny
    vlmeval_model: ServedTiny
    gpus: 2
    model_spec: {class: DOCLING, model_path: /models/tiny}
    serve: {engine: vllm, args: [--max-model-len, "4096"]}
"""


def test_seed_stores_the_serve_spec_and_reseeds_idempotently(session, tmp_path: Path) -> None:
    path = tmp_path / "seed.yaml"
    path.write_text(SEED)
    assert seed(session, path).created == ["model:served-tiny"]
    row = get_model(session, "served-tiny")
    assert row.serve == {
        "engine": "vllm", "args": ["--max-model-len", "4096"], "gpus": 2,
        "startup_timeout_s": 1800.0, "idle_timeout_s": 600.0,
    }  # fmt: skip
    public = ModelPublic.model_validate(row).model_dump(mode="json")
    assert public["serve"]["engine"] == "vllm" and public["serve"]["gpus"] == 2
    assert seed(session, path).unchanged == ["model:served-tiny"]
    path.write_text(SEED.replace("engine: vllm", "engine: sglang"))
    assert seed(session, path).updated == ["model:served-tiny"]
    assert get_model(session, "served-tiny").serve["engine"] == "sglang"  # type: ignore[index]


def test_seed_refuses_an_unknown_engine_naming_the_four(session, tmp_path: Path) -> None:
    path = tmp_path / "seed.yaml"
    path.write_text(SEED.replace("engine: vllm", "engine: tgi"))
    with pytest.raises(ValueError, match="unknown engine 'tgi'; give one of vllm, sglang, lmdeploy, transformers"):
        seed(session, path)


def test_the_table_refuses_serve_with_an_endpoint(engine) -> None:
    with pytest.raises(IntegrityError, match="ck_models_serve_no_endpoint"), engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO models (name, display_name, vlmeval_model, serve, endpoint_base_url) "
                """VALUES ('both', 'B', 'X', '{"engine": "vllm"}', 'http://127.0.0.1:1/v1')"""
            )
        )
