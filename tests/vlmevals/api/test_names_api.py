"""POST /tasks and /models check names against VLMEvalKit's registry: a typo is a 422 with the closest names."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration


def test_task_names_checked_with_suggestions_and_judge_need(clients) -> None:
    r = clients.op.post("/api/evals/tasks", json={"name": "ai2d", "display_name": "AI2D", "vlmeval_data": "AI2D_TSET"})
    assert r.status_code == 422 and "closest registered names: AI2D_TEST" in r.json()["detail"], r.text
    r = clients.op.post("/api/evals/tasks", json={"name": "ai2d", "display_name": "AI2D", "vlmeval_data": "AI2D_TEST"})
    assert r.status_code == 201 and r.json()["needs_llm_judge"] is False, r.text
    r = clients.op.post(
        "/api/evals/tasks", json={"name": "mathvista", "display_name": "MV", "vlmeval_data": "MathVista_MINI"}
    )
    assert r.status_code == 201 and r.json()["needs_llm_judge"] is True, r.text
    lab = {"name": "lab", "display_name": "Lab", "vlmeval_data": "LAB_PRIVATE", "dataset_url": "http://10.1.2.3/x.tsv"}
    r = clients.op.post("/api/evals/tasks", json=lab)
    assert r.status_code == 422 and "dataset_md5" in r.text
    r = clients.op.post("/api/evals/tasks", json={**lab, "dataset_md5": "a" * 32})
    assert r.status_code == 201 and r.json()["dataset_url"] == "http://10.1.2.3/x.tsv", r.text


def test_model_names_checked_unless_spec_or_endpoint(clients) -> None:
    body = {"name": "qwen", "display_name": "Q", "vlmeval_model": "Qwen2-VL-2B-Instruc"}
    r = clients.op.post("/api/evals/models", json=body)
    assert r.status_code == 422 and "Qwen2-VL-2B-Instruct" in r.json()["detail"], r.text
    spec = {"class": "Qwen2VLChat", "model_path": "Qwen/Qwen2-VL-2B-Instruct"}
    r = clients.op.post("/api/evals/models", json={**body, "model_spec": spec, "revision": "v1.0"})
    assert r.status_code == 201 and r.json()["revision"] == "v1.0", r.text
