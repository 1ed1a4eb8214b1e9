"""`POST /api/evals/runs/{id}/rejudge` as users reach it: a new run with a real DAG run in Airflow, refusals that
name the fix, and the trigger permission (the re-judge's scoring itself: tests/vlmevals/pipeline/test_rejudge.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from vlmevals.db.engine import session_scope
from vlmevals.db.models import EvalRun
from vlmevals.runs import rejudge

from tests.vlmevals.api.conftest import add_run

pytestmark = pytest.mark.integration
TASK, MODEL = "demo-shapes-mcq", "demo-tiny-idefics3"


def _source(engine: Any, **extra: Any) -> int:
    """A completed run judged by exact matching, its prediction file where the re-judge looks for it."""
    run_id = add_run(engine, TASK, MODEL, score=0.5, fingerprint={"judge": {"name": "exact_matching"}}, **extra)
    with session_scope(engine) as s:
        run = s.get(EvalRun, run_id)
        assert run is not None
        pred = (
            Path(run.artifacts_dir or "") / run.model.vlmeval_model / f"{run.model.vlmeval_model}_DEMO_SHAPES_MCQ.xlsx"
        )
    pred.parent.mkdir(parents=True, exist_ok=True)
    pred.write_bytes(b"predictions")  # only its presence is checked at the trigger
    return run_id


def _dag_run_conf(dag_run_id: str) -> dict[str, Any] | None:
    from airflow.models import DagRun
    from airflow.utils.session import create_session

    with create_session() as s:
        dr = s.scalar(select(DagRun).where(DagRun.dag_id == "eval_run", DagRun.run_id == dag_run_id))
        return dict(dr.conf) if dr is not None else None


def test_rejudge_creates_a_run_of_the_same_pair_with_its_dag_run(clients: Any, seeded: Any) -> None:
    source = _source(seeded)
    r = clients.op.post(f"/api/evals/runs/{source}/rejudge", json={"judge": "gpt-4o-mini"})
    assert r.status_code == 201, r.text
    got = r.json()
    assert got["id"] != source and got["source_run_id"] == source and got["status"] == "queued"
    assert (got["task_name"], got["model_name"], got["options"]["judge"]) == (TASK, MODEL, "gpt-4o-mini")
    assert got["rejudged"] == f"re-judged from #{source} with gpt-4o-mini" and got["triggered_by_user"] == "op"
    assert got["links"]["airflow_logs"].endswith("/tasks/scoring"), "a re-judge's log is its scoring task's"
    conf = _dag_run_conf(got["dag_run_id"])
    assert conf is not None and conf["eval_run_id"] == got["id"], "no DAG run in Airflow for the re-judge"
    detail = clients.viewer.get(f"/api/evals/runs/{got['id']}").json()
    assert f"re-judge of eval run {source} with gpt-4o-mini" in " ".join(e["message"] or "" for e in detail["events"])
    again = clients.op.post(f"/api/evals/runs/{source}/rejudge", json={"judge": "gpt-4o-mini"})
    assert again.status_code == 201, "a second re-judge of the same source is not a duplicate active run"


def test_refusals_name_the_fix(clients: Any, seeded: Any) -> None:
    source = _source(seeded)
    missing = clients.op.post("/api/evals/runs/999999/rejudge", json={"judge": "gpt-4o-mini"})
    assert missing.status_code == 404 and "no eval run with id 999999" in missing.json()["detail"]

    same = clients.op.post(f"/api/evals/runs/{source}/rejudge", json={"judge": "exact_matching"})
    assert same.status_code == 409 and same.json()["existing_run_id"] == source
    assert "already judged by exact_matching" in same.json()["detail"] and "force=true" in same.json()["detail"]
    forced = clients.op.post(f"/api/evals/runs/{source}/rejudge", json={"judge": "exact_matching", "force": True})
    assert forced.status_code == 201, forced.text

    running = add_run(seeded, TASK, MODEL, status="running", forced=True)
    busy = clients.op.post(f"/api/evals/runs/{running}/rejudge", json={"judge": "gpt-4o-mini"})
    assert busy.status_code == 409 and "is running: only a completed run" in busy.json()["detail"]

    limited = _source(seeded, options={"limit": 5})
    part = clients.op.post(f"/api/evals/runs/{limited}/rejudge", json={"judge": "gpt-4o-mini"})
    assert part.status_code == 422 and "re-judge a run of the whole dataset" in part.json()["detail"]

    with session_scope(seeded) as s:
        rejudge.source_predictions(s.get(EvalRun, source)).unlink()  # type: ignore[arg-type]
    gone = clients.op.post(f"/api/evals/runs/{source}/rejudge", json={"judge": "gpt-4o-mini"})
    assert gone.status_code == 422 and "no predictions to re-judge" in gone.json()["detail"]
    assert "evaluate the task x model again" in gone.json()["detail"]

    bad = clients.op.post(f"/api/evals/runs/{source}/rejudge", json={"judge": "gpt-4o-mini", "force": "yes"})
    assert bad.status_code == 422, "force is a JSON boolean"
    with session_scope(seeded) as s:
        assert s.scalar(select(EvalRun.id).where(EvalRun.source_run_id == limited)) is None, "no run left by a refusal"


def test_a_viewer_may_not_rejudge(clients: Any, seeded: Any) -> None:
    source = _source(seeded)
    r = clients.viewer.post(f"/api/evals/runs/{source}/rejudge", json={"judge": "gpt-4o-mini"})
    assert r.status_code == 403, r.text
    assert clients.anon.post(f"/api/evals/runs/{source}/rejudge", json={"judge": "gpt-4o-mini"}).status_code == 401
    with session_scope(seeded) as s:
        assert s.scalar(select(EvalRun.id).where(EvalRun.source_run_id == source)) is None
