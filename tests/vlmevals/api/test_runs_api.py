"""Triggering, listing, reading and cancelling runs; the DAG runs are real rows in Airflow's metadata DB."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select
from vlmevals.db.engine import session_scope
from vlmevals.db.models import EvalRun

from tests.vlmevals.api.conftest import add_model, add_run

pytestmark = pytest.mark.integration
RUNS = "/api/evals/tasks/demo-shapes-mcq/runs"


def _dag_run(run_id: str):
    from airflow.models import DagRun
    from airflow.utils.session import create_session

    with create_session() as s:
        dr = s.scalar(select(DagRun).where(DagRun.dag_id == "eval_run", DagRun.run_id == run_id))
        if dr is not None:
            s.expunge(dr)
        return dr


def _ti_states(run_id: str) -> dict[str, str]:
    from airflow.models import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as s:
        tis = s.scalars(select(TaskInstance).where(TaskInstance.dag_id == "eval_run", TaskInstance.run_id == run_id))
        return {ti.task_id: str(ti.state) for ti in tis}


def test_trigger_creates_row_and_dag_run(clients, seeded) -> None:
    r = clients.op.post(RUNS, json={"model_name": "demo-tiny-idefics3", "options": {"limit": 5}})
    assert r.status_code == 201, r.text
    run = r.json()
    assert run["status"] == "queued" and run["triggered_by"] == "api" and run["triggered_by_user"] == "op"
    assert run["options"]["limit"] == 5 and run["dag_id"] == "eval_run"
    assert run["links"]["airflow_run"] == f"/dags/eval_run/runs/{run['dag_run_id']}"
    dr = _dag_run(run["dag_run_id"])
    assert dr is not None, "no DAG run in Airflow"
    assert dr.conf["eval_run_id"] == run["id"] and dr.conf["task"] == "demo-shapes-mcq"
    assert dr.triggering_user_name == "op" and str(dr.triggered_by.value) == "rest_api"
    assert str(dr.state) == "queued"
    detail = clients.viewer.get(f"/api/evals/runs/{run['id']}").json()
    assert [e["status"] for e in detail["events"]] == ["queued"] and "triggered by api (op)" in detail["events"][0][
        "message"
    ]


def test_same_pair_active_is_409_unless_forced(clients, seeded) -> None:
    first = clients.op.post(RUNS, json={"model_name": "demo-tiny-idefics3"}).json()
    r = clients.admin.post(RUNS, json={"model_name": "demo-tiny-idefics3"})
    assert r.status_code == 409
    assert r.json()["existing_run_id"] == first["id"] and r.json()["run"]["status"] == "queued"
    assert "force" in r.json()["detail"]
    forced = clients.admin.post(RUNS, json={"model_name": "demo-tiny-idefics3", "force": True})
    assert forced.status_code == 201 and forced.json()["id"] != first["id"]
    # once over, the pair can be triggered again without force
    clients.op.post(f"/api/evals/runs/{first['id']}/cancel")
    clients.op.post(f"/api/evals/runs/{forced.json()['id']}/cancel")
    assert clients.op.post(RUNS, json={"model_name": "demo-tiny-idefics3"}).status_code == 201


def test_100_concurrent_triggers_make_one_run(clients, seeded) -> None:
    def go(_: int) -> int:
        return clients.op.post(RUNS, json={"model_name": "demo-tiny-idefics3"}).status_code

    with ThreadPoolExecutor(max_workers=100) as pool:
        codes = list(pool.map(go, range(100)))
    assert sorted(set(codes)) == [201, 409] and codes.count(201) == 1, codes
    with session_scope(seeded) as s:
        assert s.scalar(select(func.count()).select_from(EvalRun)) == 1


@pytest.mark.parametrize(
    ("body", "code", "needle"),
    [
        ({"model_name": "ghost"}, 422, "unknown model 'ghost'"),
        ({"model_name": "Not A Slug"}, 422, "model_name"),
        ({}, 422, "model_name"),
        ({"model_name": "demo-tiny-idefics3", "options": {"limit": 0}}, 422, "limit"),
        ({"model_name": "demo-tiny-idefics3", "options": {"bogus": 1}}, 422, "bogus"),
        ({"model_name": "demo-tiny-idefics3", "force": "maybe"}, 422, "force"),
    ],
)
def test_bad_trigger_requests(clients, seeded, body, code, needle) -> None:
    r = clients.op.post(RUNS, json=body)
    assert r.status_code == code, r.text
    assert needle in r.text
    with session_scope(seeded) as s:
        assert s.scalar(select(func.count()).select_from(EvalRun)) == 0, "no row for a refused trigger"


def test_unknown_task_is_404(clients) -> None:
    r = clients.op.post("/api/evals/tasks/ghost/runs", json={"model_name": "demo-tiny-idefics3"})
    assert r.status_code == 404 and "unknown task 'ghost'" in r.json()["detail"]
    assert clients.viewer.get("/api/evals/tasks/ghost/runs").status_code == 404


def test_list_runs_filters_and_pages(clients, seeded) -> None:
    add_model(clients.op, "other")
    ids = [
        add_run(
            seeded,
            "demo-shapes-mcq",
            "demo-tiny-idefics3",
            status=st,
            score=0.5 if st == "completed" else None,
            forced=st == "running",  # a second active run of the pair exists only when forced
        )
        for st in ("completed", "failed", "queued", "running", "completed")
    ]
    other = add_run(seeded, "demo-shapes-mcq", "other", status="running")
    add_run(seeded, "mmbench-dev-en", "other", status="running")  # another task: never listed
    everything = clients.viewer.get(RUNS).json()
    assert everything["count"] == 6 and [r["id"] for r in everything["data"]] == [other, *ids[::-1]]
    active = clients.viewer.get(f"{RUNS}?status=queued&status=running").json()
    assert {r["id"] for r in active["data"]} == {ids[2], ids[3], other} and active["count"] == 3
    mine = clients.viewer.get(f"{RUNS}?model=other").json()
    assert [r["id"] for r in mine["data"]] == [other]
    page2 = clients.viewer.get(f"{RUNS}?limit=2&offset=2").json()
    assert page2["count"] == 6 and [r["id"] for r in page2["data"]] == [ids[3], ids[2]]
    assert clients.viewer.get(f"{RUNS}?status=done").status_code == 422
    assert clients.viewer.get(f"{RUNS}?model=ghost").status_code == 404


def test_get_run_shows_everything(clients, seeded, tmp_path) -> None:
    (tmp_path / "worker_stderr.log").write_text("vlmeval said")
    rid = add_run(
        seeded,
        "demo-shapes-mcq",
        "demo-tiny-idefics3",
        score=0.6,
        ci_low=0.5,
        ci_high=0.7,
        samples_total=20,
        samples_failed=1,
        regression=True,
        regression_detail={"delta": -0.1},
        metrics={"table": {"split=none|Overall": 0.6, "split=none|circle": 0.8}},
        progress_done=20,
        progress_total=20,
        dag_run_id="manual__x",
        dag_id="eval_run",
        artifacts_dir=str(tmp_path),
    )
    run = clients.viewer.get(f"/api/evals/runs/{rid}").json()
    assert run["primary_metric"] == 0.6 and (run["ci_low"], run["ci_high"]) == (0.5, 0.7)
    assert run["samples_failed"] == 1 and run["regression"] is True and run["regression_detail"] == {"delta": -0.1}
    assert run["categories"] == {"Overall": 0.6, "circle": 0.8} and run["progress"] == 1.0
    assert run["links"]["airflow_logs"] == "/dags/eval_run/runs/manual__x/tasks/inference"
    assert run["links"]["worker_log"] == f"/api/evals/runs/{rid}/artifacts/worker_stderr.log"
    assert clients.viewer.get(run["links"]["worker_log"]).text == "vlmeval said"
    for bad, code in (("999999", 404), ("0", 422), ("abc", 422), ("99999999999999999999999", 422)):
        assert clients.viewer.get(f"/api/evals/runs/{bad}").status_code == code, bad


def test_backfilled_run_links_only_to_files_it_has(clients, seeded, tmp_path) -> None:
    """A backfilled VLMEvalKit folder has predictions and metric tables but no worker logs: no `worker_log`
    link, and every link the run, the run list and the leaderboard give can be followed (no 404)."""
    folder = tmp_path / "DemoTinyIdefics3" / "T20261201_Gdeadbeef"
    folder.mkdir(parents=True)
    (folder / "DemoTinyIdefics3_DEMO_SHAPES_MCQ_acc.csv").write_text("split,Overall\nnone,0.5\n")
    rid = add_run(
        seeded,
        "demo-shapes-mcq",
        "demo-tiny-idefics3",
        score=0.5,
        triggered_by="backfill",
        artifacts_dir=str(folder),
        source_path=str(folder),
    )
    run = clients.viewer.get(f"/api/evals/runs/{rid}").json()
    listed = clients.viewer.get("/api/evals/runs").json()["data"][0]
    row = clients.viewer.get("/api/evals/tasks/demo-shapes-mcq/leaderboard").json()["data"][0]
    for links in (run["links"], listed["links"], row["links"]):
        assert links["worker_log"] is None, links
        for name, url in links.items():
            if url is not None and url.startswith("/api/evals/"):
                assert clients.viewer.get(url).status_code == 200, (name, url)
    files = clients.viewer.get(run["links"]["artifacts"]).json()["data"]
    assert [f["name"] for f in files] == ["DemoTinyIdefics3_DEMO_SHAPES_MCQ_acc.csv"]


def test_cancel_fails_the_dag_run(clients, seeded) -> None:
    run = clients.op.post(RUNS, json={"model_name": "demo-tiny-idefics3"}).json()
    r = clients.admin.post(f"/api/evals/runs/{run['id']}/cancel")
    assert r.status_code == 200, r.text
    assert r.json()["run"]["status"] == "cancelled" and r.json()["dag_run_stopped"] is True
    assert r.json()["run"]["error"] == "cancelled by admin"
    assert str(_dag_run(run["dag_run_id"]).state) == "failed"
    assert set(_ti_states(run["dag_run_id"]).values()) == {"skipped"}, "nothing left for the scheduler to start"
    again = clients.admin.post(f"/api/evals/runs/{run['id']}/cancel")
    assert again.status_code == 409 and "already cancelled" in again.json()["detail"]
    done = add_run(seeded, "demo-shapes-mcq", "demo-tiny-idefics3", score=0.3)
    assert clients.op.post(f"/api/evals/runs/{done}/cancel").status_code == 409
    assert clients.viewer.get(f"/api/evals/runs/{done}").json()["status"] == "completed"
    assert clients.op.post("/api/evals/runs/424242/cancel").status_code == 404


def test_cancel_run_without_dag_run(clients, seeded) -> None:
    rid = add_run(seeded, "demo-shapes-mcq", "demo-tiny-idefics3", status="running")
    r = clients.op.post(f"/api/evals/runs/{rid}/cancel")
    assert r.status_code == 200 and r.json()["dag_run_stopped"] is False and r.json()["run"]["status"] == "cancelled"


def test_cached_listing_follows_active_runs(clients, seeded) -> None:
    """Listings are cached while the live stamp stands: a repeat is identical (gzip or not); progress on an
    active run (no event), a run finishing and a new run show on the next request."""
    from vlmevals.runs import lifecycle

    rid = add_run(seeded, "demo-shapes-mcq", "demo-tiny-idefics3", status="running")
    first = clients.viewer.get(RUNS).json()
    assert clients.viewer.get(RUNS).json() == first and first["data"][0]["progress_done"] in (0, None)
    zipped = clients.viewer.get(RUNS, headers={"Accept-Encoding": "gzip"})
    plain = clients.viewer.get(RUNS, headers={"Accept-Encoding": "identity"})
    assert zipped.headers.get("content-encoding") == "gzip" and "content-encoding" not in plain.headers
    assert zipped.json() == plain.json() == first
    with session_scope(seeded) as s:
        lifecycle.set_progress(s, rid, 3, 10)
    assert clients.viewer.get(RUNS).json()["data"][0]["progress_done"] == 3
    with session_scope(seeded) as s:
        assert lifecycle.mark_completed(s, rid, primary_metric=0.5, metrics={"table": {"Overall": 0.5}})
    assert clients.viewer.get(RUNS).json()["data"][0]["status"] == "completed"
    other = add_run(seeded, "demo-shapes-mcq", "demo-tiny-idefics3", status="failed")
    got = clients.viewer.get(RUNS).json()
    assert [r["id"] for r in got["data"]] == [other, rid] and got["count"] == 2
    assert clients.viewer.get("/api/evals/runs?status=completed").json()["data"][0]["id"] == rid
