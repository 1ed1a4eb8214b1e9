"""Against running Airflow components: a user triggers eval_run through Airflow's own REST API."""

from __future__ import annotations

import time

import httpx
import pytest
from sqlalchemy import select
from vlmevals.db.engine import session_scope
from vlmevals.db.models import EvalRun

pytestmark = pytest.mark.e2e


def test_trigger_through_airflow_rest_api(live_stack, seeded) -> None:
    client = httpx.Client(
        base_url=live_stack.api_url, timeout=30, headers={"Authorization": f"Bearer {live_stack.token('admin')}"}
    )
    deadline = time.monotonic() + 120
    while client.get("/api/v2/dags/eval_run").status_code != 200:
        assert time.monotonic() < deadline, "eval_run never parsed by the dag-processor"
        time.sleep(1)
    r = client.post(
        "/api/v2/dags/eval_run/dagRuns",
        json={
            "logical_date": None,
            "conf": {"task": "demo-shapes-mcq", "model": "demo-tiny-idefics3", "triggered_by": "airflow_rest"},
        },
    )
    assert r.status_code == 200, r.text
    dag_run_id = r.json()["dag_run_id"]
    seen: list[str] = []
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        state = client.get(f"/api/v2/dags/eval_run/dagRuns/{dag_run_id}").json()["state"]
        with session_scope(seeded) as s:
            run = s.scalar(select(EvalRun).where(EvalRun.dag_run_id == dag_run_id))
            if run is not None and (not seen or seen[-1] != run.status):
                seen.append(run.status)
        if state in ("success", "failed"):
            break
        time.sleep(0.5)
    assert state == "success"
    with session_scope(seeded) as s:
        run = s.scalar(select(EvalRun).where(EvalRun.dag_run_id == dag_run_id))
        assert run.status == "completed" and run.primary_metric is not None
        assert run.triggered_by == "airflow_rest" and run.triggered_by_user == "admin"
        assert [e.status for e in run.events] == ["queued", "running", "completed"]
    assert seen[-1] == "completed"
    # the viewer can read but not trigger
    viewer = httpx.Client(
        base_url=live_stack.api_url, timeout=30, headers={"Authorization": f"Bearer {live_stack.token('viewer')}"}
    )
    assert viewer.post("/api/v2/dags/eval_run/dagRuns", json={"logical_date": None, "conf": {}}).status_code == 403
