"""Every evals route needs an Airflow user; writes need the right to trigger eval_run (real JWTs, real roles)."""

from __future__ import annotations

import pytest

from tests.vlmevals.api.conftest import add_run

pytestmark = pytest.mark.integration

READS = [
    "/api/evals/tasks",
    "/api/evals/tasks/demo-shapes-mcq",
    "/api/evals/models",
    "/api/evals/models/demo-tiny-idefics3",
    "/api/evals/tasks/demo-shapes-mcq/runs",
    "/api/evals/tasks/demo-shapes-mcq/leaderboard",
    "/api/evals/tasks/demo-shapes-mcq/leaderboard/history",
    "/api/evals/runs/{run}",
    "/api/evals/runs/{run}/artifacts",
    "/api/evals/me",
    "/api/evals/openapi.json",
    "/api/evals/docs",
    "/api/evals/ui/leaderboard",
    "/api/evals/ui/static/leaderboard.js",
]


def _writes(i: int) -> list[tuple[str, dict | None]]:
    return [
        ("/api/evals/tasks", {"name": f"t-{i}", "display_name": "T", "vlmeval_data": "MMBench_DEV_EN"}),
        ("/api/evals/models", {"name": f"m-{i}", "display_name": "M", "vlmeval_model": "InternVL2_5-2B"}),
        ("/api/evals/tasks/demo-shapes-mcq/runs", {"model_name": "demo-tiny-idefics3", "force": True}),
    ]


def test_anonymous_gets_401_everywhere(clients, seeded) -> None:
    run = add_run(seeded, "demo-shapes-mcq", "demo-tiny-idefics3", status="queued")
    for path in READS:
        r = clients.anon.get(path.format(run=run))
        assert r.status_code == 401, (path, r.status_code, r.text)
    for path, body in [*_writes(0), (f"/api/evals/runs/{run}/cancel", None)]:
        r = clients.anon.post(path, json=body)
        assert r.status_code == 401, (path, r.text)
    # a forged token is refused too, and nothing was written
    bad = clients.anon.get("/api/evals/tasks", headers={"Authorization": "Bearer not-a-jwt"})
    assert bad.status_code in (401, 403)
    assert clients.admin.get("/api/evals/tasks/t-0").status_code == 404


@pytest.mark.parametrize("role", ["viewer", "op", "admin"])
def test_every_role_reads(clients, seeded, role: str) -> None:
    run = add_run(seeded, "demo-shapes-mcq", "demo-tiny-idefics3", score=0.5)
    c = clients.by_role[role]
    for path in READS:
        r = c.get(path.format(run=run))
        assert r.status_code == 200, (role, path, r.status_code, r.text[:300])


def test_viewer_cannot_write(clients, seeded) -> None:
    run = add_run(seeded, "demo-shapes-mcq", "demo-tiny-idefics3", status="running")
    for path, body in [*_writes(1), (f"/api/evals/runs/{run}/cancel", None)]:
        r = clients.viewer.post(path, json=body)
        assert r.status_code == 403, (path, r.text)
    assert clients.viewer.get("/api/evals/me").json() == {"username": "viewer", "can_trigger": False}
    assert clients.admin.get(f"/api/evals/runs/{run}").json()["status"] == "running"
    assert clients.admin.get("/api/evals/tasks/t-1").status_code == 404


@pytest.mark.parametrize("role", ["op", "admin"])
def test_op_and_admin_write(clients, seeded, role: str) -> None:
    c = clients.by_role[role]
    assert c.get("/api/evals/me").json() == {"username": role, "can_trigger": True}
    created = [c.post(path, json=body) for path, body in _writes(2)]
    assert [r.status_code for r in created] == [201, 201, 201], [r.text for r in created]
    run = created[2].json()
    assert run["triggered_by_user"] == role
    r = c.post(f"/api/evals/runs/{run['id']}/cancel")
    assert r.status_code == 200 and r.json()["run"]["status"] == "cancelled"


def test_ui_session_cookie_authenticates(clients, tokens, seeded) -> None:
    """The page runs in an iframe of the Airflow UI: the `_token` cookie must be enough."""
    from fastapi.testclient import TestClient

    c = TestClient(clients.anon.app, cookies={"_token": tokens["viewer"]})
    page = c.get("/api/evals/ui/leaderboard")
    assert page.status_code == 200 and "<h1>Leaderboard</h1>" in page.text
    assert page.headers["content-security-policy"] == "frame-ancestors 'self'"
    assert c.get("/api/evals/tasks").json()["count"] == clients.admin.get("/api/evals/tasks").json()["count"] > 0
    assert c.post("/api/evals/tasks", json={}).status_code == 403
