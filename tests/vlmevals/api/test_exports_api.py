"""GET /api/evals/exports: the outbox for any signed-in user, filtered by state and run."""

from __future__ import annotations

import pytest
from vlmevals.core.settings import get_settings

from tests.vlmevals.exports.runs_data import completed, failed

pytestmark = pytest.mark.integration


def test_viewer_reads_the_outbox(clients, seeded, monkeypatch) -> None:
    monkeypatch.setenv("EVALS_EXPORTERS", "mlflow,tensorboard")
    get_settings.cache_clear()
    try:
        done, bad = completed(seeded), failed(seeded)
    finally:
        get_settings.cache_clear()
    r = clients.viewer.get("/api/evals/exports")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["count"] == 4 and body["states"] == {"pending": 4, "delivered": 0, "failed": 0}
    assert {(x["run_id"], x["exporter"]) for x in body["data"]} == {
        (done, "mlflow"), (done, "tensorboard"), (bad, "mlflow"), (bad, "tensorboard")
    }  # fmt: skip
    one = clients.viewer.get("/api/evals/exports", params={"run_id": bad, "state": "pending", "limit": 1}).json()
    assert one["count"] == 2 and len(one["data"]) == 1 and one["data"][0]["run_id"] == bad
    assert clients.viewer.get("/api/evals/exports", params={"state": "lost"}).status_code == 422
    assert clients.anon.get("/api/evals/exports").status_code == 401
