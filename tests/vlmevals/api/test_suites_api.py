"""Suites through the API: seeded suites, create, bad input (nothing half-created), trigger a model on a suite."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from vlmevals.db.engine import session_scope
from vlmevals.db.models import EvalRun, Suite, SuiteTask

pytestmark = pytest.mark.integration
SUITES = "/api/evals/suites"


def _counts(engine) -> tuple[int, int]:
    with session_scope(engine) as s:
        return (
            s.scalar(select(func.count()).select_from(Suite)) or 0,
            s.scalar(select(func.count()).select_from(SuiteTask)) or 0,
        )


def test_seeded_suites_listed_in_order(clients) -> None:
    r = clients.viewer.get(SUITES)
    assert r.status_code == 200, r.text
    assert [s["name"] for s in r.json()["data"]] == ["demo", "openvlm-core"] and r.json()["count"] == 2
    core = clients.viewer.get(f"{SUITES}/openvlm-core").json()
    assert [t["task"] for t in core["tasks"]] == [
        "mmbench-dev-en",
        "mmstar",
        "mmmu-dev-val",
        "mathvista-mini",
        "hallusionbench",
        "ai2d-test",
        "ocrbench",
        "mmvet",
    ]
    assert all(t["weight"] == 1.0 for t in core["tasks"])
    vlmeval = {t["name"]: t["vlmeval_data"] for t in clients.viewer.get("/api/evals/tasks?limit=100").json()["data"]}
    assert vlmeval["mmmu-dev-val"] == "MMMU_DEV_VAL" and vlmeval["mathvista-mini"] == "MathVista_MINI"
    demo = clients.viewer.get(f"{SUITES}/demo").json()
    assert [t["task"] for t in demo["tasks"]] == ["demo-shapes-mcq", "demo-colors-vqa", "demo-shapes-yorn"]


def test_create_with_weights_and_names(clients) -> None:
    body = {
        "name": "mine",
        "display_name": "Mine",
        "tasks": ["demo-shapes-yorn", {"task": "demo-shapes-mcq", "weight": 2.5}],
    }
    r = clients.op.post(SUITES, json=body)
    assert r.status_code == 201, r.text
    got = r.json()
    assert [(t["task"], t["weight"]) for t in got["tasks"]] == [("demo-shapes-yorn", 1.0), ("demo-shapes-mcq", 2.5)]
    assert got["tasks"][1]["metric_scale"] == 1.0 and got["tasks"][0]["metric_scale"] == 100.0
    assert clients.viewer.get(f"{SUITES}/mine").json()["tasks"] == got["tasks"]
    dup = clients.op.post(SUITES, json=body)
    assert dup.status_code == 409 and "already exists" in dup.json()["detail"]


@pytest.mark.parametrize(
    ("tasks", "words"),
    [
        ([], ["tasks is empty", "at least one task"]),
        (["demo-shapes-mcq", "nope-task"], ["unknown task", "'nope-task'", "register"]),
        ([{"task": "demo-shapes-mcq", "weight": 0}], ["weight", "greater than 0"]),
        ([{"task": "demo-shapes-mcq", "weight": -1}], ["weight", "greater than 0"]),
        ([{"task": "demo-shapes-mcq", "weight": "heavy"}], ["weight", "number"]),
        (["demo-shapes-mcq", "demo-shapes-mcq"], ["twice", "once"]),
    ],
)
def test_bad_suites_refused_and_nothing_stored(clients, seeded, tasks, words) -> None:
    before = _counts(seeded)
    r = clients.op.post(SUITES, json={"name": "bad", "display_name": "Bad", "tasks": tasks})
    assert r.status_code == 422, r.text
    text = str(r.json()["detail"])
    assert all(w in text for w in words), text
    assert _counts(seeded) == before
    assert clients.viewer.get(f"{SUITES}/bad").status_code == 404


def test_unknown_suite_404_and_viewer_cannot_create(clients) -> None:
    r = clients.viewer.get(f"{SUITES}/nope")
    assert r.status_code == 404 and "POST /api/evals/suites" in r.json()["detail"]
    body = {"name": "v", "display_name": "V", "tasks": ["demo-shapes-mcq"]}
    assert clients.viewer.post(SUITES, json=body).status_code == 403
    assert clients.anon.get(SUITES).status_code == 401


def test_trigger_suite_starts_one_run_per_task_and_reports_active(clients, seeded) -> None:
    one = clients.op.post("/api/evals/tasks/demo-colors-vqa/runs", json={"model_name": "demo-tiny-idefics3"}).json()
    r = clients.op.post(f"{SUITES}/demo/runs", json={"model_name": "demo-tiny-idefics3", "options": {"limit": 3}})
    assert r.status_code == 201, r.text
    got = r.json()
    assert [e["task"] for e in got["started"]] == ["demo-shapes-mcq", "demo-shapes-yorn"]
    assert got["already_active"] == [
        {"task": "demo-colors-vqa", "run_id": one["id"], "status": "queued", "link": f"/api/evals/runs/{one['id']}"}
    ]
    assert got["failed"] == []
    for e in got["started"]:
        run = clients.viewer.get(f"/api/evals/runs/{e['run_id']}").json()
        assert run["task_name"] == e["task"] and run["status"] == "queued" and run["options"]["limit"] == 3
        assert run["triggered_by"] == "api"
        assert run["dag_run_id"] == e["dag_run_id"]
    again = clients.op.post(f"{SUITES}/demo/runs", json={"model_name": "demo-tiny-idefics3"})
    assert again.status_code == 200 and again.json()["started"] == []
    assert len(again.json()["already_active"]) == 3
    with session_scope(seeded) as s:
        assert s.scalar(select(func.count()).select_from(EvalRun)) == 3


def test_trigger_suite_bad_input(clients, seeded) -> None:
    r = clients.op.post(f"{SUITES}/demo/runs", json={"model_name": "no-such-model"})
    assert r.status_code == 422 and "unknown model 'no-such-model'; register it first" in r.json()["detail"]
    r = clients.op.post(f"{SUITES}/nope/runs", json={"model_name": "no-such-model"})
    assert r.status_code == 404 and "unknown suite" in r.json()["detail"], "the URL's resource is checked first"
    assert clients.viewer.post(f"{SUITES}/demo/runs", json={"model_name": "demo-tiny-idefics3"}).status_code == 403
    with session_scope(seeded) as s:
        assert s.scalar(select(func.count()).select_from(EvalRun)) == 0


def test_dag_plan_creates_rows_per_task_and_skips_active(clients, seeded) -> None:
    """What the eval_suite DAG's `plan` task does: rows bound to the eval_run DAG run ids it will trigger."""
    from vlmevals.runs.suite_runs import create_suite_runs

    one = clients.op.post("/api/evals/tasks/demo-shapes-mcq/runs", json={"model_name": "demo-tiny-idefics3"}).json()
    with session_scope(seeded) as s:
        kwargs, done = create_suite_runs(s, "demo", "demo-tiny-idefics3", parent_run_id="manual__2026 x")
    assert [e["task"] for e in done.started] == ["demo-colors-vqa", "demo-shapes-yorn"]
    assert done.already_active == [{"task": "demo-shapes-mcq", "run_id": one["id"], "status": "queued"}]
    assert [k["trigger_run_id"] for k in kwargs] == [f"suite__manual__2026_x__{e['run_id']}" for e in done.started]
    assert all(k["conf"]["eval_run_id"] == e["run_id"] for k, e in zip(kwargs, done.started, strict=True))
    with session_scope(seeded) as s:
        rows = [s.get(EvalRun, e["run_id"]) for e in done.started]
        assert all(r is not None and r.status == "queued" and r.dag_id == "eval_run" for r in rows)
        assert [r.triggered_by for r in rows if r is not None] == ["suite", "suite"]
    assert all(k["conf"]["triggered_by"] == "suite" for k in kwargs)
