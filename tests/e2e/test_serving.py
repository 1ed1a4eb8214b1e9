"""Managed serving on the live stack with a real engine: `transformers serve` (transformers 5.23.0 in its own
environment, scripts/setup_engines.sh) serving the demo Idefics3 on CPU to VLMEvalKit's OpenAI-compatible client.

A checkpoint of a served model is evaluated on the demo suite with exactly one model load, its runs overlapping,
the server stopping after them; an engine that cannot start fails its run naming the engine, its command line
and its log; "Mark failed" on the server's task stops the engine and says so."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from vlmevals.db.engine import session_scope
from vlmevals.db.models import EvalRun
from vlmevals.devtools.stack import wait_for_dag
from vlmevals.vlmevalkit.runner import group_alive

from tests.e2e.plugin_helpers import client, wait_dag_run_over, wait_run

pytestmark = pytest.mark.e2e
DEMO_TASKS = {"demo-shapes-mcq", "demo-colors-vqa", "demo-shapes-yorn"}
LOAD_MARK = "[transformers] Loading "  # what transformers serve logs once per model load


def _register(c: httpx.Client, name: str, weights: Path, serve: dict[str, Any]) -> None:
    spec = {"class": "DOCLING", "model_path": str(weights), "max_new_tokens": 1, "do_sample": False}
    r = c.post(
        "/api/evals/models",
        json={
            "name": name,
            "display_name": f"Demo served ({name})",
            "vlmeval_model": name.replace("-", "_"),
            "model_spec": spec,
            "gpus": 1,
            "suite": "demo",
            "serve": {"engine": "transformers", **serve},
        },
    )
    assert r.status_code == 201, r.text


def _servers(c: httpx.Client, model: str) -> list[dict[str, Any]]:
    r = c.get("/api/evals/servers")
    assert r.status_code == 200, r.text
    return [s for s in r.json()["servers"] if s["model"] == model]


def _wait_server(c: httpx.Client, model: str, states: set[str], timeout_s: float = 240) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    got: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        got = _servers(c, model)
        if got and got[0]["state"] in states:
            return got[0]
        time.sleep(1)
    raise AssertionError(f"server of {model} not {states}: {got}")


def _dag_run_over(c: httpx.Client, dag_run_id: str, timeout_s: float = 120) -> dict[str, Any]:
    """The server's DAG run once over (its finalize teardown runs after the serve task)."""
    deadline = time.monotonic() + timeout_s
    dag_run: dict[str, Any] = {}
    while time.monotonic() < deadline:
        dag_run = c.get(f"/api/v2/dags/model_server/dagRuns/{dag_run_id}").json()
        if dag_run.get("state") in ("success", "failed"):
            return dag_run
        time.sleep(1)
    raise AssertionError(f"model_server run {dag_run_id} not over: {dag_run}")


@pytest.fixture(scope="module")
def admin(live_stack) -> httpx.Client:
    c = client(live_stack, "admin")
    for dag_id in ("eval_run", "model_server", "eval_checkpoint"):
        wait_for_dag(c, dag_id, timeout_s=180)
    return c


def test_a_checkpoints_suite_is_served_by_one_engine_with_one_load(admin, seeded, demo_assets) -> None:
    model = "demo-served"
    _register(admin, model, demo_assets["model"], {"idle_timeout_s": 600})
    r = admin.post(
        f"/api/evals/models/{model}/checkpoints", json={"step": 7, "weights_path": str(demo_assets["model"])}
    )
    assert r.status_code == 201, r.text
    run_ids = [s["run_id"] for s in r.json()["started"]]
    assert len(run_ids) == len(DEMO_TASKS), r.json()
    for rid in run_ids:
        run = wait_run(admin, rid, timeout_s=600)
        assert run["status"] == "completed", run
        wait_dag_run_over(admin, run["dag_run_id"])  # its finalize too: the next test's run ids start at 1 again

    server = _wait_server(admin, model, {"stopped", "failed"}, timeout_s=120)  # a checkpoint's server: no linger
    assert (server["state"], server["reason"]) == ("stopped", "its runs are over"), server
    assert server["checkpoint"] == "step 7" and server["engine"] == "transformers"
    assert server["engine_version"] == "5.23.0" and server["loads"] == 1
    assert len(_servers(admin, model)) == 1, "one server for the checkpoint's whole suite"
    assert Path(server["log_path"]).read_text().count(LOAD_MARK) == 1, "the weights were loaded once"
    assert server["pid"] and not group_alive(server["pid"]), "no engine process is left"

    with session_scope(seeded) as s:
        runs = list(s.scalars(select(EvalRun).where(EvalRun.id.in_(run_ids))))
        spans = [(r.started_at, r.finished_at) for r in runs]
        assert all(r.server_id == server["id"] for r in runs)
        assert all(r.fingerprint["serving"]["engine"] == "transformers" for r in runs)
        assert server["requests_served"] == sum(r.progress_done for r in runs) > 0
    assert max(a for a, _ in spans) < min(b for _, b in spans), f"the suite's runs overlap in time: {spans}"

    dag_run = _dag_run_over(admin, server["dag_run_id"])
    assert dag_run["state"] == "success", dag_run
    assert f"model server {server['id']}: transformers 5.23.0" in (dag_run.get("note") or ""), dag_run
    assert "1 model load(s); 3 eval run(s)" in dag_run["note"]


def test_an_engine_that_cannot_start_fails_the_run_naming_command_and_log(admin, seeded, demo_assets) -> None:
    model = "demo-served-bad"
    _register(admin, model, demo_assets["model"], {"args": ["--no-such-flag"], "idle_timeout_s": 30})
    r = admin.post("/api/evals/tasks/demo-shapes-mcq/runs", json={"model_name": model})
    assert r.status_code == 201, r.text
    run = wait_run(admin, r.json()["id"], timeout_s=300)
    assert run["status"] == "failed", run
    assert wait_dag_run_over(admin, run["dag_run_id"]) == "failed"
    assert "(transformers) is failed: engine transformers exited with status" in run["error"], run["error"]
    assert "--no-such-flag" in run["error"], "the command line (and the log's complaint) is in the error"
    server = _wait_server(admin, model, {"failed"})
    assert _dag_run_over(admin, server["dag_run_id"])["state"] == "failed"


def test_mark_failed_on_the_servers_task_stops_the_engine(admin, seeded, demo_assets) -> None:
    model = "demo-served-marked"
    _register(admin, model, demo_assets["model"], {"idle_timeout_s": 3600})
    r = admin.post("/api/evals/tasks/demo-shapes-yorn/runs", json={"model_name": model})
    assert r.status_code == 201, r.text
    run = wait_run(admin, r.json()["id"], timeout_s=300)
    assert run["status"] == "completed", run
    wait_dag_run_over(admin, run["dag_run_id"])
    server = _wait_server(admin, model, {"ready"})  # lingers: an hour of idle time allowed
    marked = admin.patch(
        f"/api/v2/dags/model_server/dagRuns/{server['dag_run_id']}/taskInstances/serve", json={"new_state": "failed"}
    )
    assert marked.status_code == 200, marked.text
    over = _wait_server(admin, model, {"failed", "stopped"}, timeout_s=120)
    assert over["state"] == "failed" and "stopped by Airflow" in (over["reason"] or ""), over
    deadline = time.monotonic() + 30
    while group_alive(over["pid"]) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not group_alive(over["pid"]), "the engine stopped with its task"
