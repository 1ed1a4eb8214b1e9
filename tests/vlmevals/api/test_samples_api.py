"""The samples endpoints on a bare FastAPI app, over samples ingested from real VLMEvalKit result files."""

from __future__ import annotations

from pathlib import Path

import pytest
from vlmevals.results.samples.ingest import ingest_for_run

from tests.vlmeval_outputs import MODEL_NAME, make_real_outputs


@pytest.mark.integration
def test_samples_api(seeded, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient
    from vlmevals.api import errors
    from vlmevals.api.routers.samples import router
    from vlmevals.core.settings import get_settings
    from vlmevals.db.engine import session_scope
    from vlmevals.runs import lifecycle as runs

    real = make_real_outputs(tmp_path)
    with session_scope(seeded) as s:
        run_id = runs.create_run(s, "demo-shapes-mcq", "demo-tiny-idefics3", triggered_by="airflow_rest").id
    monkeypatch.setenv("LMUData", str(real["lmu_dir"]))
    get_settings.cache_clear()
    md = real["cases"]["ok"]["model_dir"]
    with session_scope(seeded) as s:
        cols = ingest_for_run(s, run_id, md, MODEL_NAME, "DEMO_SHAPES_MCQ", {})
        runs.mark_completed(s, run_id, primary_metric=0.5, metrics={}, extra=cols)
    app = FastAPI(root_path="/api/evals")
    errors.install(app)
    app.include_router(router)
    try:
        with TestClient(app) as c:
            r = c.get(f"/runs/{run_id}/samples", params={"outcome": "wrong", "limit": 5})
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["total"] == 20 and body["failed"] == 0 and body["categories"] == {"colour": 10, "shape": 10}
            assert len(body["data"]) == min(5, body["count"]) and all(d["outcome"] == "wrong" for d in body["data"])
            first = body["data"][0]
            assert first["image"].endswith(f"/runs/{run_id}/samples/{first['sample_index']}/image")
            img = c.get(f"/runs/{run_id}/samples/{first['sample_index']}/image")
            assert img.status_code == 200 and img.headers["content-type"] == "image/png"
            assert c.get(f"/runs/{run_id}/samples", params={"outcome": "bogus"}).status_code == 422
            missing = c.get("/runs/999999/samples")
            assert missing.status_code == 404 and "no eval run with id 999999" in missing.json()["detail"]
            assert c.get(f"/runs/{run_id}/samples/999/image").status_code == 404
    finally:
        get_settings.cache_clear()
