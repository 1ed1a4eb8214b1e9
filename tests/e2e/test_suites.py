"""A suite trigger on the live stack, through the evals API and through the `eval_suite` DAG with its default
params: one eval run per task, a second trigger told which runs are already active, every run completed, and the
model on the suite's overall board with full coverage."""

from __future__ import annotations

import time

import httpx
import pytest
from sqlalchemy import select
from vlmevals.db.engine import session_scope
from vlmevals.db.models import EvalRun, Model
from vlmevals.devtools.stack import wait_for_dag

from tests.e2e.plugin_helpers import client, wait_dag_run_over, wait_run

pytestmark = pytest.mark.e2e
SUITE = "demo"
MODEL = "demo-tiny-idefics3"
DEMO_TASKS = {"demo-shapes-mcq", "demo-colors-vqa", "demo-shapes-yorn"}


def _runs_of(engine, since_id: int) -> list[EvalRun]:
    with session_scope(engine) as s:
        rows = list(
            s.scalars(
                select(EvalRun).join(Model).where(Model.name == MODEL, EvalRun.id > since_id).order_by(EvalRun.id)
            )
        )
        s.expunge_all()
    return rows


def _last_id(engine) -> int:
    with session_scope(engine) as s:
        return max(s.scalars(select(EvalRun.id)).all(), default=0)


def _wait_dag_run(c: httpx.Client, dag_id: str, dag_run_id: str, timeout_s: float = 300) -> str:
    deadline = time.monotonic() + timeout_s
    state = "?"
    while time.monotonic() < deadline:
        state = c.get(f"/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}").json()["state"]
        if state in ("success", "failed"):
            return state
        time.sleep(1)
    raise AssertionError(f"{dag_id} run {dag_run_id} still {state}")


def _assert_on_board(c: httpx.Client) -> None:
    board = c.get(f"/api/evals/suites/{SUITE}/leaderboard").json()
    row = next(r for r in board["data"] if r["model_name"] == MODEL)
    assert row["coverage"] == "3/3" and row["covered"] == 3, row
    assert set(row["cells"]) == DEMO_TASKS and all(cell is not None for cell in row["cells"].values()), row


def test_suite_trigger_through_the_api_then_the_dag(live_stack, seeded) -> None:
    admin = client(live_stack, "admin")
    wait_for_dag(admin, "eval_run", timeout_s=120)
    wait_for_dag(admin, "eval_suite", timeout_s=120)

    first = admin.post(f"/api/evals/suites/{SUITE}/runs", json={"model_name": MODEL})
    assert first.status_code == 201, first.text
    started = {e["task"]: e["run_id"] for e in first.json()["started"]}
    assert set(started) == DEMO_TASKS, first.json()
    again = admin.post(f"/api/evals/suites/{SUITE}/runs", json={"model_name": MODEL})
    assert again.status_code == 200, again.text
    active = {e["task"]: e["run_id"] for e in again.json()["already_active"]}
    assert active == started, again.json()  # the per-pair rule: told the active runs' ids, nothing new
    for run_id in started.values():
        assert wait_run(admin, run_id, timeout_s=600)["status"] == "completed"
    _assert_on_board(admin)

    since = _last_id(seeded)
    made = admin.post("/api/v2/dags/eval_suite/dagRuns", json={"logical_date": None, "conf": {}})  # the defaults
    assert made.status_code == 200, made.text
    assert _wait_dag_run(admin, "eval_suite", made.json()["dag_run_id"]) == "success"
    runs = _runs_of(seeded, since)
    assert len(runs) == len(DEMO_TASKS), [(r.id, r.status, r.error) for r in runs]
    done = [wait_run(admin, run.id, timeout_s=600) for run in runs]
    assert [d["status"] for d in done] == ["completed"] * len(DEMO_TASKS), done
    assert {d["task_name"] for d in done} == DEMO_TASKS
    _assert_on_board(admin)
    for d in done:  # their teardown too: the next test's `seeded` starts the run ids at 1 again
        wait_dag_run_over(admin, d["dag_run_id"])
