"""Against the running api-server: a user creates a task and a model, triggers through the evals API, waits
for the DAG run, reads the run, its artifacts and the leaderboard; then cancels a second run."""

from __future__ import annotations

import pytest

from tests.e2e.plugin_helpers import client, wait_dag, wait_dag_run_over, wait_run

pytestmark = pytest.mark.e2e

TASK = {
    "name": "e2e-shapes",
    "display_name": "E2E shapes (MCQ)",
    "vlmeval_data": "DEMO_SHAPES_MCQ",
    "vlmeval_dataset_class": "CustomMCQDataset",
    "primary_metric_suffix": "_acc.csv",
    "primary_metric_key": "Overall",
    "higher_is_better": True,
    "metric_scale": 1.0,
}
MODEL = {
    "name": "e2e-tiny",
    "display_name": "E2E tiny Idefics3",
    "vlmeval_model": "E2ETinyIdefics3",
    "model_type": "vlm",
    "params_b": 0.00005,
    "gpus": 1,
    "model_spec": {
        "class": "DOCLING",
        "model_path": "{models_dir}/demo-tiny-idefics3",
        "max_new_tokens": 1,
        "do_sample": False,
    },
}


def test_trigger_through_evals_api_and_read_leaderboard(live_stack, seeded, demo_assets) -> None:
    admin, op = client(live_stack, "admin"), client(live_stack, "op")
    wait_dag(admin)
    assert client(live_stack, None).get("/api/evals/tasks").status_code == 401
    assert admin.post("/api/evals/tasks", json=TASK).status_code == 201
    assert admin.post("/api/evals/models", json=MODEL).status_code == 201
    viewer = client(live_stack, "viewer")
    assert viewer.post("/api/evals/tasks/e2e-shapes/runs", json={"model_name": "e2e-tiny"}).status_code == 403

    r = op.post("/api/evals/tasks/e2e-shapes/runs", json={"model_name": "e2e-tiny", "options": {"limit": 10}})
    assert r.status_code == 201, r.text
    run = r.json()
    assert run["status"] == "queued" and run["triggered_by"] == "api" and run["triggered_by_user"] == "op"
    dup = op.post("/api/evals/tasks/e2e-shapes/runs", json={"model_name": "e2e-tiny"})
    assert dup.status_code == 409 and dup.json()["existing_run_id"] == run["id"]

    done = wait_run(viewer, run["id"])
    assert done["status"] == "completed", done["error"]
    assert wait_dag_run_over(viewer, run["dag_run_id"]) == "success"
    dr = admin.get(f"/api/v2/dags/eval_run/dagRuns/{run['dag_run_id']}").json()
    assert dr["conf"]["eval_run_id"] == run["id"] and dr["triggering_user_name"] == "op"
    assert [e["status"] for e in done["events"]] == ["queued", "running", "completed"]
    assert done["progress_done"] == done["progress_total"] == 10 and done["categories"]

    # a 10-sample run is a smoke test: off the board by default, listed (marked) when asked for
    assert viewer.get("/api/evals/tasks/e2e-shapes/leaderboard").json()["data"] == []
    board = viewer.get("/api/evals/tasks/e2e-shapes/leaderboard?include_limited=true").json()
    assert [(row["rank"], row["model_name"], row["run_id"]) for row in board["data"]] == [(1, "e2e-tiny", run["id"])]
    assert board["data"][0]["limited"] is True and board["data"][0]["sample_limit"] == 10
    assert board["data"][0]["score"] == pytest.approx(done["primary_metric"])
    assert board["data"][0]["categories"] == done["categories"]

    files = {f["name"] for f in viewer.get(f"/api/evals/runs/{run['id']}/artifacts").json()["data"]}
    assert "worker_stderr.log" in files and "E2ETinyIdefics3/E2ETinyIdefics3_DEMO_SHAPES_MCQ_acc.csv" in files
    acc = viewer.get(f"/api/evals/runs/{run['id']}/artifacts/E2ETinyIdefics3/E2ETinyIdefics3_DEMO_SHAPES_MCQ_acc.csv")
    assert acc.status_code == 200 and "Overall" in acc.text
    assert viewer.get(f"/api/evals/runs/{run['id']}/artifacts/..%2F..%2F..%2Fetc%2Fpasswd").status_code in (404, 422)

    # cancelling a queued run: the row is cancelled at once and Airflow ends the DAG run without a result
    second = op.post("/api/evals/tasks/e2e-shapes/runs", json={"model_name": "e2e-tiny"}).json()
    cancel = op.post(f"/api/evals/runs/{second['id']}/cancel")
    assert cancel.status_code == 200 and cancel.json()["run"]["status"] == "cancelled"
    assert wait_dag_run_over(viewer, second["dag_run_id"]) == "failed"
    assert viewer.get(f"/api/evals/runs/{second['id']}").json()["status"] == "cancelled"
    assert viewer.get("/api/evals/tasks/e2e-shapes/leaderboard?include_limited=true").json()["count"] == 1
