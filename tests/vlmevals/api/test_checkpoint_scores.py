"""GET /models/{name}/checkpoints/scores: normalisation (both directions, both scales), the latest run per
cell, weighted averages, coverage, the best checkpoint, drop flags, training order, and 404/422."""

from __future__ import annotations

import pytest

from tests.vlmevals.api.checkpoint_data import seed_checkpoints

pytestmark = pytest.mark.integration
URL = "/api/evals/models/{}/checkpoints/scores"


def _get(clients, model: str = "trainee", q: str = "") -> dict:
    r = clients.viewer.get(URL.format(model) + q)
    assert r.status_code == 200, r.text
    return r.json()


def test_scores_against_step(clients, seeded) -> None:
    ids = seed_checkpoints(seeded)
    got = _get(clients)
    assert got["model"] == "trainee" and got["suite"] == "mix"
    assert got["tasks"] == [
        {"name": "acc", "display_name": "ACC", "weight": 2.0},
        {"name": "err", "display_name": "ERR", "weight": 1.0},
        {"name": "vqa", "display_name": "VQA", "weight": 1.0},
    ]
    assert got["average_tolerance"] == pytest.approx(4 / 3)
    rows = {(c["step"], c["label"]): c for c in got["checkpoints"]}
    order = [(c["step"], c["label"]) for c in got["checkpoints"]]
    assert order == [(0, None), (100, None), (400, None), (1000, None), (None, "rc1"), (None, "final")]
    values = {k: {t: (c and c["score"]) for t, c in r["scores"].items()} for k, r in rows.items()}
    # acc: 0-1 higher-better; err: 0-100 lower-better (100 - score); vqa: 0-100 higher-better
    assert values[(0, None)] == pytest.approx({"acc": 30.0, "err": 30.0, "vqa": 20.0})
    assert values[(100, None)] == pytest.approx({"acc": 60.0, "err": 60.0, "vqa": 50.0})  # latest, not best
    assert values[(1000, None)] == {"acc": None, "err": None, "vqa": None}
    assert values[(None, "final")] == {"acc": pytest.approx(99.0), "err": None, "vqa": None}
    assert rows[(100, None)]["scores"]["acc"]["run_id"] == ids["runs"][("100", "acc")]
    assert rows[(0, None)]["id"] == ids["checkpoints"]["0"]
    averages = [r["average"] for r in got["checkpoints"]]
    assert averages == pytest.approx([27.5, 57.5, 55.25, None, 57.5, 99.0])
    assert [r["coverage"] for r in got["checkpoints"]] == [3, 3, 3, 0, 3, 1]


def test_best_and_drops(clients, seeded) -> None:
    seed_checkpoints(seeded)
    cps = _get(clients)["checkpoints"]
    # step 100 and rc1 tie at 57.5: the earliest wins; "final" (99) covers one task of three: never best
    assert [c["best"] for c in cps] == [False, True, False, False, False, False]
    # step 400: -2.25 points > 4/3; rc1 rose against 400 (the empty step 1000 is skipped); final rose on acc
    assert [c["average_drop"] for c in cps] == [False, False, True, False, False, False]
    drops = {(c["step"], t) for c in cps for t, cell in c["scores"].items() if cell and cell["drop"]}
    assert drops == {(400, "acc")}  # vqa's flag comes from another check, not a checkpoint drop


def test_explicit_suite_and_the_model_list(clients, seeded) -> None:
    seed_checkpoints(seeded)
    got = _get(clients, q="?suite=demo")  # the seed's demo suite: no checkpoint run on its tasks
    assert got["suite"] == "demo" and got["tasks"]
    assert all(c["coverage"] == 0 and c["average"] is None and not c["best"] for c in got["checkpoints"])
    r = clients.viewer.get("/api/evals/checkpoint-scores")
    assert r.status_code == 200, r.text
    assert r.json() == {
        "data": [{"name": "trainee", "display_name": "Trainee", "suite": "mix", "checkpoints": 6}],
        "count": 1,
    }


def test_unknown_model_or_suite_is_404_and_no_suite_is_422(clients, seeded) -> None:
    seed_checkpoints(seeded, model_suite=False)
    r = clients.viewer.get(URL.format("nobody"))
    assert r.status_code == 404 and "unknown model 'nobody'" in r.json()["detail"]
    r = clients.viewer.get(URL.format("trainee") + "?suite=nosuch")
    assert r.status_code == 404 and "unknown suite 'nosuch'" in r.json()["detail"]
    r = clients.viewer.get(URL.format("trainee"))
    assert r.status_code == 422
    assert "pass ?suite=" in r.json()["detail"] and "set the model's suite" in r.json()["detail"]
    assert clients.viewer.get(URL.format("trainee") + "?suite=mix").status_code == 200
    assert clients.viewer.get(URL.format("trainee") + "?suite=Bad%20Name").status_code == 422
    assert clients.anon.get(URL.format("trainee")).status_code == 401


def test_judge_requests_and_cost_summed_per_checkpoint(clients, seeded) -> None:
    from vlmevals.db.engine import session_scope
    from vlmevals.db.models import EvalRun

    ids = seed_checkpoints(seeded)
    usage = {("100", "acc"): (30, 0.002), ("100", "vqa"): (12, None), ("400", "vqa"): (5, None)}  # None: no price
    with session_scope(seeded) as s:
        for key, (requests, cost) in usage.items():
            run = s.get(EvalRun, ids["runs"][key])
            run.fingerprint = {"judge_usage": {"requests": requests, "cached": 0, "cost_usd": cost}}
    rows = {c["step"]: c for c in _get(clients)["checkpoints"] if c["label"] is None}
    assert (rows[100]["judge_requests"], rows[100]["judge_cost_usd"]) == (42, pytest.approx(0.002))
    assert (rows[400]["judge_requests"], rows[400]["judge_cost_usd"]) == (5, None), "judged, but no price known"
    assert (rows[0]["judge_requests"], rows[0]["judge_cost_usd"]) == (None, None), "nothing judged by an LLM"
