"""Airflow's api-server app lists our plugin and keeps serving its own routes beside /api/evals."""

from __future__ import annotations

import pytest


@pytest.mark.integration
def test_airflow_lists_the_plugin(airflow_api, tokens) -> None:
    from fastapi.testclient import TestClient

    c = TestClient(airflow_api, headers={"Authorization": f"Bearer {tokens['admin']}"})
    plugins = c.get("/api/v2/plugins").json()["plugins"]
    ours = next(p for p in plugins if p["name"] == "vlm_evals")
    assert ours["fastapi_apps"][0]["url_prefix"] == "/api/evals"
    assert [v["name"] for v in ours["external_views"]] == ["Leaderboard"]
    # Airflow's own API and UI still answer next to ours; unknown /api paths still get Airflow's 404
    assert c.get("/api/v2/version").status_code == 200
    assert c.get("/api/nope").status_code == 404
