"""Checkpoints through Airflow's own asset events, on the live stack: an event of `model_checkpoints` posted to
`POST /api/v2/assets/events` registers the checkpoint and ends with its suite's runs completed, each carrying
the checkpoint; an event missing a field fails its `eval_checkpoint` DAG run at the first task, naming the field."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from vlmevals.core.constants import CHECKPOINT_ASSET_URI, CHECKPOINT_DAG_ID
from vlmevals.db.engine import session_scope
from vlmevals.db.models import EvalRun
from vlmevals.devtools.airflow_api import wait_for_dag

from tests.e2e.plugin_helpers import client

pytestmark = pytest.mark.e2e
DEMO = "demo-tiny-idefics3"
SUITE = "ckpt-e2e"


def _wait(what: str, check: Callable[[], Any], timeout_s: float) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(2)
    raise AssertionError(f"timed out waiting for {what}")


def _asset_id(c: httpx.Client) -> int:
    def found() -> int | None:
        assets = c.get("/api/v2/assets", params={"uri_pattern": CHECKPOINT_ASSET_URI}).json().get("assets") or []
        return assets[0]["id"] if assets else None

    return int(_wait("the model_checkpoints asset", found, 120))


def _dag_runs(c: httpx.Client) -> dict[str, str]:
    got = c.get(f"/api/v2/dags/{CHECKPOINT_DAG_ID}/dagRuns", params={"limit": 100}).json()
    return {r["dag_run_id"]: r["state"] for r in got.get("dag_runs", [])}


def _completed_checkpoint_runs(engine) -> list[EvalRun]:
    with session_scope(engine) as s:
        rows = list(s.scalars(select(EvalRun).where(EvalRun.checkpoint_id.is_not(None))))
        s.expunge_all()
    return rows if rows and all(r.status not in ("queued", "running") for r in rows) else []


def test_asset_event_evaluates_the_checkpoint_and_a_bad_one_fails_first_task(live_stack, seeded, demo_assets) -> None:
    c = client(live_stack, "admin")
    wait_for_dag(c, "eval_run", timeout_s=180)
    wait_for_dag(c, CHECKPOINT_DAG_ID, timeout_s=180)
    r = c.post(
        "/api/evals/suites", json={"name": SUITE, "display_name": "Checkpoint e2e", "tasks": ["demo-shapes-mcq"]}
    )
    assert r.status_code == 201, r.text
    asset_id = _asset_id(c)
    weights = str(demo_assets["model"])
    extra = {"model": DEMO, "step": 0, "weights_path": weights, "suite": SUITE}
    ev = c.post("/api/v2/assets/events", json={"asset_id": asset_id, "extra": extra})
    assert ev.status_code in (200, 201), ev.text

    runs = _wait("the checkpoint's suite runs to finish", lambda: _completed_checkpoint_runs(seeded), 600)
    assert [r.status for r in runs] == ["completed"], [(r.status, r.error) for r in runs]
    cps = c.get(f"/api/evals/models/{DEMO}/checkpoints").json()
    assert cps["count"] == 1 and cps["data"][0]["step"] == 0 and cps["data"][0]["weights_path"] == weights
    run = c.get(f"/api/evals/runs/{runs[0].id}").json()
    assert run["checkpoint"] == {"id": cps["data"][0]["id"], "step": 0, "label": None}
    assert run["fingerprint"]["model"]["checkpoint"]["step"] == 0 and run["primary_metric"] is not None

    before = set(_dag_runs(c))
    bad = c.post("/api/v2/assets/events", json={"asset_id": asset_id, "extra": {"model": DEMO, "step": 1}})
    assert bad.status_code in (200, 201), bad.text

    def failed_run() -> str | None:
        new = {k: v for k, v in _dag_runs(c).items() if k not in before}
        return next((k for k, v in new.items() if v == "failed"), None)

    dag_run_id = _wait("the bad event's DAG run to fail", failed_run, 240)
    tis = c.get(f"/api/v2/dags/{CHECKPOINT_DAG_ID}/dagRuns/{dag_run_id}/taskInstances").json()["task_instances"]
    states = {t["task_id"]: t["state"] for t in tis}
    assert states["register"] == "failed" and states.get("trigger_eval_run") in (None, "upstream_failed"), states
    log = c.get(
        f"/api/v2/dags/{CHECKPOINT_DAG_ID}/dagRuns/{dag_run_id}/taskInstances/register/logs/1",
        headers={"Accept": "text/plain"},
    ).text
    assert "weights_path" in log and "hub_revision" in log and "nothing registered" in log, log[-3000:]
    assert c.get(f"/api/evals/models/{DEMO}/checkpoints").json()["count"] == 1
