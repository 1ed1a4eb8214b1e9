"""The OpenAPI document is served behind auth and describes the routes as they behave."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration

ROUTES = {
    ("/tasks", "get"),
    ("/tasks", "post"),
    ("/tasks/{name}", "get"),
    ("/models", "get"),
    ("/models", "post"),
    ("/models/{name}", "get"),
    ("/tasks/{task_name}/runs", "get"),
    ("/tasks/{task_name}/runs", "post"),
    ("/tasks/{task_name}/leaderboard", "get"),
    ("/tasks/{task_name}/leaderboard/history", "get"),
    ("/runs/{run_id}", "get"),
    ("/runs/{run_id}/cancel", "post"),
    ("/runs/{run_id}/artifacts", "get"),
    ("/runs/{run_id}/artifacts/{path}", "get"),
    ("/me", "get"),
    ("/exports", "get"),
}


def test_openapi_behind_auth_and_complete(clients) -> None:
    assert clients.anon.get("/api/evals/openapi.json").status_code == 401
    doc = clients.viewer.get("/api/evals/openapi.json").json()
    assert doc["servers"] == [{"url": "/api/evals"}]
    ops = {(p, m) for p, item in doc["paths"].items() for m in item}
    assert ops >= ROUTES, ROUTES - ops
    for path, method in ROUTES:
        op = doc["paths"][path][method]
        assert "401" in op["responses"], (path, method)
        assert op.get("security"), f"{method} {path} does not declare its auth"
    for path, method in [
        ("/tasks", "post"),
        ("/models", "post"),
        ("/tasks/{task_name}/runs", "post"),
        ("/runs/{run_id}/cancel", "post"),
    ]:
        assert "403" in doc["paths"][path][method]["responses"]
    trig = doc["paths"]["/tasks/{task_name}/runs"]["post"]["responses"]
    assert {"201", "404", "409", "422"} <= set(trig)
    conflict = trig["409"]["content"]["application/json"]["schema"]["$ref"]
    assert conflict.endswith("/ConflictResponse")
    schemas = doc["components"]["schemas"]
    assert {"data", "count"} <= set(schemas["RunList"]["properties"])
    for f in ("ci_low", "ci_high", "samples_failed", "regression", "links"):
        assert f in schemas["LeaderboardRow"]["properties"]
    assert clients.viewer.get("/api/evals/docs").status_code == 200
