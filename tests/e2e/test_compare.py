"""Two real runs through the eval_run DAG (dag.test) of an endpoint model on the OpenAI-compatible test server,
answering right (oracle) then wrong: per-sample ingestion, fingerprints, the samples and comparison endpoints,
the paired regression check and the drift marks, all on what VLMEvalKit really wrote."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from vlmevals.db.engine import session_scope
from vlmevals.db.models import EvalRun, EvalSample, Model

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
TASK = "demo-shapes-mcq"


@pytest.fixture(scope="module")
def two_runs(airflow_db: str, demo_assets: dict[str, Path]) -> Any:
    """(engine, oracle run id, wrong run id), run once for the module; rows are removed afterwards."""
    from airflow.dag_processing.dagbag import DagBag
    from sqlalchemy import text
    from vlmevals.catalogue.seed import seed
    from vlmevals.db.engine import get_engine

    from tests.airflow_state import set_eval_run_paused
    from tests.doubles.openai_server import serve

    engine = get_engine()
    with session_scope(engine) as s:
        seed(s)
    was = set_eval_run_paused(True)  # the live stack's scheduler shares the metadata DB (tests/conftest.py)
    try:
        with serve(mode="oracle", tsv=str(demo_assets["DEMO_SHAPES_MCQ"])) as srv:
            with session_scope(engine) as s:
                for name in ("endpoint-right", "endpoint-wrong"):
                    s.add(
                        Model(
                            name=name,
                            display_name=name,
                            vlmeval_model="test-model",
                            gpus=0,
                            endpoint_base_url=srv.base_url,
                        )
                    )
            ids = []
            for model, mode in (("endpoint-right", "oracle"), ("endpoint-wrong", "wrong")):
                srv.set_policy(mode=mode)
                dag = DagBag(dag_folder=str(ROOT / "dags" / "eval_run.py")).dags["eval_run"]
                dr = dag.test(run_conf={"task": TASK, "model": model, "triggered_by": "airflow_rest"})
                with session_scope(engine) as s:
                    run = s.scalar(select(EvalRun).where(EvalRun.dag_run_id == dr.run_id))
                    assert run is not None and run.status == "completed", (run.status, run.error) if run else dr.state
                    ids.append(run.id)
    finally:
        if was is not None:
            set_eval_run_paused(was)
    yield engine, ids[0], ids[1]
    with engine.begin() as conn:
        conn.execute(
            text(
                "TRUNCATE gpu_leases, enrolments, eval_samples, eval_run_events, eval_runs, models, tasks "
                "RESTART IDENTITY CASCADE"
            )
        )


@pytest.fixture(scope="module")
def client(two_runs: Any) -> Any:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient
    from vlmevals.api import errors
    from vlmevals.api.routers import compare as compare_api
    from vlmevals.api.routers import samples as samples_api

    app = FastAPI(root_path="/api/evals")
    errors.install(app)
    app.include_router(samples_api.router)
    app.include_router(compare_api.router)
    with TestClient(app) as c:
        yield c


def test_runs_record_samples_ci_and_fingerprint(two_runs: Any) -> None:
    engine, right_id, wrong_id = two_runs
    with session_scope(engine) as s:
        right, wrong = s.get(EvalRun, right_id), s.get(EvalRun, wrong_id)
        assert right is not None and wrong is not None
        for run in (right, wrong):
            assert run.samples_total == 20 and run.samples_failed == 0
            assert run.ci_low is not None and run.ci_high is not None
            assert run.ci_low <= run.primary_metric <= run.ci_high
            assert run.metrics["samples"]["official"] == pytest.approx(run.primary_metric)
            assert run.metrics["samples"]["ci"]["method"] == "wilson"
            fp = run.fingerprint
            assert fp["model"]["kind"] == "endpoint" and fp["model"]["served_model"] == "test-model"
            assert fp["dataset"]["name"] == "DEMO_SHAPES_MCQ" and len(fp["dataset"]["md5"]) == 32
            assert fp["judge"]["name"] == "exact_matching" and fp["toolkit"]["vlmeval"].startswith("ms-vlmeval")
            assert {"python", "torch", "transformers", "gpus"} <= set(fp["environment"])
        # the oracle can only be as right as the question text lets it look answers up, "wrong" as wrong
        assert right.primary_metric >= 0.6 and wrong.primary_metric <= 0.2
        for run in (right, wrong):
            hits = s.scalars(select(EvalSample.score).where(EvalSample.run_id == run.id)).all()
            assert sum(hits) == round(20 * run.primary_metric), "stored hits reproduce VLMEvalKit's accuracy"


def _scores(engine: Any, run_id: int) -> dict[str, tuple[float, str]]:
    with session_scope(engine) as s:
        rows = s.execute(
            select(EvalSample.sample_index, EvalSample.score, EvalSample.category).where(EvalSample.run_id == run_id)
        ).all()
        return {i: (sc, c) for i, sc, c in rows}


def test_samples_endpoint_lists_wrong_answers_with_images(client: Any, two_runs: Any) -> None:
    engine, _, wrong_id = two_runs
    scores = _scores(engine, wrong_id)
    n_wrong = sum(1 for sc, _ in scores.values() if sc == 0)
    n_wrong_shape = sum(1 for sc, cat in scores.values() if sc == 0 and cat == "shape")
    r = client.get(f"/runs/{wrong_id}/samples", params={"outcome": "wrong", "category": "shape", "limit": 4})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["count"] == n_wrong_shape >= 4 and len(body["data"]) == 4 and body["failed"] == 0
    s0 = body["data"][0]
    assert s0["prediction"] != s0["answer"] and s0["prediction"] in "ABCD" and s0["category"] == "shape"
    img = client.get(s0["image"].removeprefix("/api/evals"))
    assert img.status_code == 200 and img.content.startswith(b"\x89PNG")
    page2 = client.get(f"/runs/{wrong_id}/samples", params={"outcome": "wrong", "limit": 10, "offset": 10}).json()
    assert page2["count"] == n_wrong and len(page2["data"]) == n_wrong - 10
    assert {d["outcome"] for d in page2["data"]} == {"wrong"}
    right = client.get(f"/runs/{wrong_id}/samples", params={"outcome": "right"}).json()
    assert right["count"] == 20 - n_wrong


def test_compare_endpoint_on_two_real_runs(client: Any, two_runs: Any) -> None:
    from vlmevals.results import stats

    engine, right_id, wrong_id = two_runs
    r = client.get(f"/tasks/{TASK}/compare", params={"run_a": right_id, "run_b": wrong_id})
    assert r.status_code == 200, r.text
    c = r.json()
    a, b = _scores(engine, right_id), _scores(engine, wrong_id)
    r2w = sorted((k for k in a if a[k][0] == 1 and b[k][0] == 0), key=int)
    w2r = sorted((k for k in a if a[k][0] == 0 and b[k][0] == 1), key=int)
    assert len(r2w) >= 10, "the two real runs answered differently"
    assert c["samples"] == {
        "a": 20,
        "b": 20,
        "shared": 20,
        "paired": 20,
        "excluded_failed": 0,
        "only_a": 0,
        "only_b": 0,
    }
    d = c["difference"]
    assert d["estimate"] == pytest.approx((len(w2r) - len(r2w)) / 20) and d["method"] == "paired-bootstrap"
    assert d["low"] <= d["estimate"] <= d["high"] < 0 and c["significant"] is True
    assert (c["mcnemar"]["right_to_wrong"], c["mcnemar"]["wrong_to_right"]) == (len(r2w), len(w2r))
    assert c["mcnemar"]["p_value"] == pytest.approx(stats.mcnemar_exact(len(r2w), len(w2r)).p_value)
    assert c["mcnemar"]["p_value"] < 0.01
    assert [f["sample_index"] for f in c["flips"]["right_to_wrong"]] == r2w
    assert [f["sample_index"] for f in c["flips"]["wrong_to_right"]] == w2r
    cats = {x["category"]: x for x in c["categories"]}
    assert set(cats) == {"colour", "shape"}
    for cat, x in cats.items():
        keys = [k for k in a if a[k][1] == cat]
        assert x["n"] == len(keys)
        assert x["delta"] == pytest.approx(sum(b[k][0] - a[k][0] for k in keys) / len(keys))
    assert c["comparability"] == [], "same dataset, judge and toolkit"
    by_models = client.get(
        f"/tasks/{TASK}/compare", params={"model_a": "endpoint-right", "model_b": "endpoint-wrong"}
    ).json()
    assert by_models["difference"] == c["difference"] and by_models["run_a"]["id"] == right_id
    reverse = client.get(f"/tasks/{TASK}/compare", params={"run_a": wrong_id, "run_b": right_id}).json()
    assert reverse["flips"]["wrong_to_right_count"] == len(r2w) and reverse["difference"]["low"] > 0
    # bad requests name the problem
    both = client.get(
        f"/tasks/{TASK}/compare", params={"run_a": right_id, "model_a": "endpoint-right", "run_b": wrong_id}
    )
    assert both.status_code == 422 and "exactly one of run_a or model_a" in str(both.json()["detail"])
    other = client.get("/tasks/mmbench-dev-en/compare", params={"run_a": right_id, "run_b": wrong_id})
    assert other.status_code == 422 and "not 'mmbench-dev-en'" in other.json()["detail"]
    none = client.get(f"/tasks/{TASK}/compare", params={"model_a": "demo-tiny-idefics3", "model_b": "endpoint-wrong"})
    assert none.status_code == 404 and "no completed run with per-sample results" in none.json()["detail"]


def test_paired_regression_and_drift(two_runs: Any) -> None:
    from vlmevals.results import drift, regression
    from vlmevals.results.regression import regression_verdict

    engine, right_id, wrong_id = two_runs
    with session_scope(engine) as s:
        right, wrong = s.get(EvalRun, right_id), s.get(EvalRun, wrong_id)
        assert right is not None and wrong is not None
        v = regression_verdict(wrong, right, wrong.task, s)
        assert v is not None and v.regression and v.method == "paired_bootstrap+exact_mcnemar"
        assert v.extra["ci_high"] < 0 and v.extra["paired_samples"] == 20
        better = regression_verdict(right, wrong, right.task, s)
        assert better is not None and not better.regression
        assert regression.METHODS[0][0] == "paired", "the paired test is tried before the absolute threshold"
        marks = drift.drift_marks([(right.id, right.fingerprint), (wrong.id, wrong.fingerprint)])
        assert marks == {right_id: [], wrong_id: []}
