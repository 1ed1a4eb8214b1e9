"""GET /api/evals/servers (any signed-in user) and POST /api/evals/servers/{id}/stop (trigger permission), on
model server rows stored as the `model_server` task leaves them."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.vlmevals.api.conftest import add_run, add_server

pytestmark = pytest.mark.integration
SERVERS = "/api/evals/servers"
MODEL = "demo-tiny-idefics3"


def _row(engine, server_id: int):
    from vlmevals.db.engine import session_scope
    from vlmevals.db.models import ModelServer

    with session_scope(engine) as s:
        row = s.scalars(select(ModelServer).where(ModelServer.id == server_id)).one()
        s.expunge(row)
        return row


def test_list_and_get_show_what_runs_and_for_whom(clients, seeded) -> None:
    failed = add_server(seeded, "internvl2.5-2b", state="failed", reason="vllm exited with code 1: CUDA out of memory")
    ready = add_server(seeded, MODEL, checkpoint_step=100)
    add_run(seeded, "demo-shapes-mcq", MODEL, server_id=ready, progress_done=40, progress_total=40)
    running = {"status": "running", "finished_days_ago": None}
    add_run(seeded, "demo-colors-vqa", MODEL, **running, server_id=ready, progress_done=7)

    r = clients.viewer.get(SERVERS)  # a viewer may read
    assert r.status_code == 200, r.text
    listed = r.json()["servers"]
    assert [s["id"] for s in listed] == [ready, failed], "newest first"
    got = listed[0]
    expected = {
        "state": "ready",
        "model": MODEL,
        "checkpoint": "step 100",
        "engine": "vllm",
        "engine_version": "0.11.0",
        "args": ["--max-model-len", "8192"],
        "base_url": "http://127.0.0.1:18018/v1",
        "gpus": 2,
        "devices": "0,1",
        "loads": 1,
        "requests_served": 47,  # both runs' answered samples
        "runs_needing": 1,  # the running one
        "idle_since": None,
        "reason": None,
        "dag_run_id": f"server-{ready}",
    }
    assert expected.items() <= got.items(), got
    assert got["started_at"] and got["stopped_at"] is None
    assert listed[1]["state"] == "failed" and listed[1]["reason"].startswith("vllm exited with code 1")
    assert listed[1]["checkpoint"] is None and listed[1]["runs_needing"] == 0

    live = clients.viewer.get(f"{SERVERS}?live=true").json()["servers"]
    assert [s["id"] for s in live] == [ready]
    assert clients.viewer.get(f"{SERVERS}?limit=1").json()["servers"][0]["id"] == ready

    one = clients.viewer.get(f"{SERVERS}/{ready}")
    assert one.status_code == 200 and one.json() == got
    missing = clients.viewer.get(f"{SERVERS}/424242")
    assert missing.status_code == 404
    assert missing.json()["detail"] == "model server 424242 not found (GET /api/evals/servers lists them)"
    assert clients.viewer.get(f"{SERVERS}/0").status_code == 422
    assert clients.anon.get(SERVERS).status_code == 401


def test_stop_needs_the_trigger_permission(clients, seeded) -> None:
    sid = add_server(seeded, MODEL)
    r = clients.viewer.post(f"{SERVERS}/{sid}/stop")
    assert r.status_code == 403, r.text
    assert clients.anon.post(f"{SERVERS}/{sid}/stop").status_code == 401
    row = _row(seeded, sid)
    assert row.state == "ready" and row.stop_requested_by is None, "a refused stop changes nothing"


def test_stop_of_an_unknown_server_is_404_naming_where_to_look(clients, seeded) -> None:
    r = clients.admin.post(f"{SERVERS}/424242/stop")
    assert r.status_code == 404, r.text
    assert r.json()["detail"] == "model server 424242 not found (GET /api/evals/servers lists them)"
    assert clients.admin.post(f"{SERVERS}/0/stop").status_code == 422


def test_stop_asks_a_live_server_and_ends_one_never_started(clients, seeded) -> None:
    live = add_server(seeded, MODEL)
    r = clients.op.post(f"{SERVERS}/{live}/stop")
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "ready", "its task stops the engine within a poll"
    row = _row(seeded, live)
    assert row.stop_requested_by == f"user op (POST /api/evals/servers/{live}/stop)"
    assert row.stopped_at is None

    waiting = add_server(seeded, "internvl2.5-2b", state="starting")
    r = clients.admin.post(f"{SERVERS}/{waiting}/stop")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["state"] == "stopped" and body["stopped_at"] is not None
    assert body["reason"] == f"stopped by user admin (POST /api/evals/servers/{waiting}/stop)"

    failed = add_server(seeded, "demo-tiny-idefics3-trained", state="failed", reason="start-up timeout (900 s)")
    again = clients.admin.post(f"{SERVERS}/{failed}/stop")
    assert again.status_code == 200 and again.json()["state"] == "failed", "a server over already is left as it is"
    assert again.json()["reason"] == "start-up timeout (900 s)" and _row(seeded, failed).stop_requested_by is None
