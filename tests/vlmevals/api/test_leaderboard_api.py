"""Leaderboard ordering in both metric directions, ties, best vs latest, unranked models, breakdown, history."""

from __future__ import annotations

import pytest

from tests.vlmevals.api.conftest import add_model, add_run

pytestmark = pytest.mark.integration


def _task(clients, name: str, higher: bool, scale: float = 1.0) -> str:
    r = clients.op.post(
        "/api/evals/tasks",
        json={
            "name": name,
            "display_name": name.title(),
            "vlmeval_data": "MMBench_DEV_EN",
            "higher_is_better": higher,
            "metric_scale": scale,
        },
    )
    assert r.status_code == 201, r.text
    return name


@pytest.fixture()
def models(clients):
    for name, size in (("alpha", 1.0), ("beta", 7.0), ("gamma", 13.0), ("delta", None)):
        add_model(clients.op, name, size)
    return clients


def _board(clients, task: str, **q) -> dict:
    qs = "&".join(f"{k}={v}" for k, v in q.items())
    r = clients.viewer.get(f"/api/evals/tasks/{task}/leaderboard?{qs}")
    assert r.status_code == 200, r.text
    return r.json()


def test_higher_is_better_ranks_descending_with_ties(models, seeded) -> None:
    task = _task(models, "acc-task", higher=True)
    add_run(seeded, task, "alpha", score=0.40, finished_days_ago=3)
    best_alpha = add_run(seeded, task, "alpha", score=0.70, finished_days_ago=2)
    add_run(seeded, task, "alpha", score=0.55, finished_days_ago=1)  # latest, not best
    add_run(seeded, task, "beta", score=0.80)
    add_run(seeded, task, "gamma", score=0.70)  # ties with alpha's best
    add_run(seeded, task, "gamma", status="failed", score=None)
    add_run(seeded, task, "delta", status="running")  # no completed run yet
    board = _board(models, task)
    assert board["task"]["higher_is_better"] is True and board["pick"] == "best"
    rows = [(r["rank"], r["model_name"], r["score"]) for r in board["data"]]
    assert rows == [(1, "beta", 0.80), (2, "alpha", 0.70), (2, "gamma", 0.70)]
    assert board["data"][1]["run_id"] == best_alpha and board["count"] == 3
    assert board["data"][0]["params_b"] == 7.0 and board["data"][0]["model_display_name"] == "BETA"
    assert board["unranked"] == [
        {
            "model_name": "delta",
            "model_display_name": "DELTA",
            "params_b": None,
            "latest_run_id": board["unranked"][0]["latest_run_id"],
            "latest_status": "running",
        }
    ]
    latest = _board(models, task, pick="latest")
    assert [(r["rank"], r["model_name"], r["score"]) for r in latest["data"]] == [
        (1, "beta", 0.80),
        (2, "gamma", 0.70),
        (3, "alpha", 0.55),
    ]


def test_lower_is_better_ranks_ascending(models, seeded) -> None:
    task = _task(models, "error-rate", higher=False, scale=100.0)
    add_run(seeded, task, "alpha", score=12.5)
    add_run(seeded, task, "alpha", score=30.0)
    add_run(seeded, task, "beta", score=8.0)
    add_run(seeded, task, "gamma", score=20.0)
    add_run(seeded, task, "gamma", score=15.0, finished_days_ago=5)
    board = _board(models, task)
    assert board["task"] == {
        "name": task,
        "display_name": "Error-Rate",
        "primary_metric_key": "Overall",
        "higher_is_better": False,
        "metric_scale": 100.0,
    }
    assert [(r["rank"], r["model_name"], r["score"]) for r in board["data"]] == [
        (1, "beta", 8.0),
        (2, "alpha", 12.5),
        (3, "gamma", 15.0),
    ]
    latest = _board(models, task, pick="latest")
    assert [(r["model_name"], r["score"]) for r in latest["data"]] == [("beta", 8.0), ("gamma", 20.0), ("alpha", 30.0)]


def test_row_carries_breakdown_ci_failures_and_links(models, seeded) -> None:
    task = _task(models, "cats", higher=True)
    rid = add_run(
        seeded,
        task,
        "alpha",
        score=0.5,
        ci_low=0.4,
        ci_high=0.6,
        samples_total=20,
        samples_failed=2,
        regression=True,
        dag_id="eval_run",
        dag_run_id="evals_api__1__x",
        metrics={"table": {"split=dev|Overall": 0.5, "split=dev|circle": 0.75, "split=dev|square": 0.25}},
    )
    row = _board(models, task)["data"][0]
    assert row["categories"] == {"Overall": 0.5, "circle": 0.75, "square": 0.25}
    assert (row["ci_low"], row["ci_high"], row["samples_failed"], row["regression"]) == (0.4, 0.6, 2, True)
    assert row["links"]["self"] == f"/api/evals/runs/{rid}"
    assert row["links"]["airflow_run"] == "/dags/eval_run/runs/evals_api__1__x"


def test_empty_and_unknown(models) -> None:
    board = _board(models, "demo-shapes-mcq")
    assert board["data"] == [] and board["unranked"] == [] and board["count"] == 0
    assert models.viewer.get("/api/evals/tasks/ghost/leaderboard").status_code == 404
    assert models.viewer.get("/api/evals/tasks/demo-shapes-mcq/leaderboard?pick=worst").status_code == 422


def test_history_per_model_oldest_first(models, seeded) -> None:
    task = _task(models, "nightly", higher=True)
    for day, score in ((3, 0.5), (2, 0.55), (1, 0.6)):
        add_run(seeded, task, "alpha", score=score, finished_days_ago=day)
    add_run(seeded, task, "beta", score=0.9)
    add_run(seeded, task, "beta", status="failed")
    hist = models.viewer.get(f"/api/evals/tasks/{task}/leaderboard/history").json()
    assert hist["count"] == 2
    alpha, beta = hist["data"]
    assert alpha["model_name"] == "alpha" and [p["score"] for p in alpha["points"]] == [0.5, 0.55, 0.6]
    assert [p["score"] for p in beta["points"]] == [0.9]
    last2 = models.viewer.get(f"/api/evals/tasks/{task}/leaderboard/history?model=alpha&per_model=2").json()
    assert [[p["score"] for p in s["points"]] for s in last2["data"]] == [[0.55, 0.6]]
    assert models.viewer.get(f"/api/evals/tasks/{task}/leaderboard/history?per_model=0").status_code == 422


def test_pages_keep_global_ranks(models, seeded) -> None:
    task = _task(models, "paged-task", higher=True)
    for name, score in (("alpha", 0.9), ("beta", 0.8), ("gamma", 0.7)):
        add_run(seeded, task, name, score=score)
    first = _board(models, task, limit=2)
    assert [(r["rank"], r["model_name"]) for r in first["data"]] == [(1, "alpha"), (2, "beta")]
    assert first["count"] == 3
    rest = _board(models, task, limit=2, offset=2)
    assert [(r["rank"], r["model_name"]) for r in rest["data"]] == [(3, "gamma")]
    r = models.viewer.get(f"/api/evals/tasks/{task}/leaderboard?limit=0")
    assert r.status_code == 422 and "limit" in r.text


def test_drift_marks_and_categories_through_the_endpoint(models, seeded) -> None:
    task = _task(models, "drift-task", higher=True)

    def fp(md5: str) -> dict:
        return {
            "dataset": {"md5": md5},
            "judge": {"name": "exact_matching"},
            "toolkit": {"vlmeval": "v1"},
            "model": {"kind": "registry"},
        }

    table = {"table": {"split=none|Overall": 0.5, "split=none|shape": 0.25}}
    add_run(seeded, task, "alpha", score=0.9, fingerprint=fp("aaa"), metrics=table)
    add_run(seeded, task, "beta", score=0.8, fingerprint=fp("aaa"), metrics=table)
    add_run(seeded, task, "gamma", score=0.7, fingerprint=fp("bbb"), metrics=table)
    add_run(seeded, task, "delta", score=0.6)  # backfilled-like: no fingerprint
    rows = {r["model_name"]: r for r in _board(models, task)["data"]}
    assert rows["alpha"]["drift"] == [] and rows["beta"]["drift"] == []
    assert rows["gamma"]["drift"] == ["dataset md5 differs"]
    assert rows["delta"]["drift"] == ["no fingerprint recorded"]
    assert rows["alpha"]["categories"]["shape"] == 0.25
    # drift is judged against the whole table, also on a page that does not hold the majority
    page = _board(models, task, limit=1, offset=2)["data"]
    assert [(r["model_name"], r["drift"]) for r in page] == [("gamma", ["dataset md5 differs"])]


def test_cached_page_follows_runs_and_model_edits(models, seeded) -> None:
    """Pages are cached while the results stamp stands: a repeat is identical (gzip or not), a new run, a run
    finishing and a model edit show on the next request."""
    task = _task(models, "cached", higher=True)
    add_run(seeded, task, "alpha", score=0.5)
    first = _board(models, task)
    assert _board(models, task) == first and [r["model_name"] for r in first["data"]] == ["alpha"]
    zipped = models.viewer.get(f"/api/evals/tasks/{task}/leaderboard", headers={"Accept-Encoding": "gzip"})
    plain = models.viewer.get(f"/api/evals/tasks/{task}/leaderboard", headers={"Accept-Encoding": "identity"})
    assert zipped.headers.get("content-encoding") == "gzip" and "content-encoding" not in plain.headers
    assert zipped.json() == plain.json() == first
    add_run(seeded, task, "beta", score=0.9)
    assert [r["model_name"] for r in _board(models, task)["data"]] == ["beta", "alpha"]
    running = add_run(seeded, task, "gamma", status="running")
    assert [u["model_name"] for u in _board(models, task)["unranked"]] == ["gamma"]
    from vlmevals.db.engine import session_scope
    from vlmevals.runs import lifecycle

    with session_scope(seeded) as s:
        assert lifecycle.mark_completed(s, running, primary_metric=0.7, metrics={"table": {"Overall": 0.7}})
    assert [r["model_name"] for r in _board(models, task)["data"]] == ["beta", "gamma", "alpha"]
    from sqlalchemy import update
    from vlmevals.db.models import Model

    with session_scope(seeded) as s:  # an edit of the model row (its row version moves the stamp)
        s.execute(update(Model).where(Model.name == "alpha").values(display_name="Alpha renamed"))
    assert _board(models, task)["data"][-1]["model_display_name"] == "Alpha renamed"


def test_limited_runs_count_only_on_request_and_are_marked(clients, seeded) -> None:
    """The issue's case: a full run (10.00) and a later smoke test with `limit: 5` (20.00) of one pair. Each
    query is asked first without, then with limited runs, then without again: the page cache keeps them apart."""
    task, model = "demo-shapes-yorn", "demo-tiny-idefics3"
    full = add_run(seeded, task, model, score=10.0, finished_days_ago=2)
    limited = add_run(seeded, task, model, score=20.0, finished_days_ago=1, options={"limit": 5})
    for pick in ("best", "latest"):
        for _ in range(2):
            board = _board(clients, task, pick=pick)
            assert [(r["run_id"], r["score"], r["limited"], r["sample_limit"]) for r in board["data"]] == [
                (full, 10.0, False, None)
            ]
            assert board["include_limited"] is False and board["count"] == 1
            asked = _board(clients, task, pick=pick, include_limited="true")
            assert [(r["run_id"], r["score"], r["limited"], r["sample_limit"]) for r in asked["data"]] == [
                (limited, 20.0, True, 5)
            ]
            assert asked["include_limited"] is True
    hist = clients.viewer.get(f"/api/evals/tasks/{task}/leaderboard/history").json()
    assert [p["run_id"] for p in hist["data"][0]["points"]] == [full] and hist["include_limited"] is False
    asked = clients.viewer.get(f"/api/evals/tasks/{task}/leaderboard/history?include_limited=true").json()
    points = [(p["run_id"], p["limited"], p["sample_limit"]) for p in asked["data"][0]["points"]]
    assert points == [(full, False, None), (limited, True, 5)]
    # run listings keep every run, the limited one marked
    runs = clients.viewer.get(f"/api/evals/tasks/{task}/runs").json()["data"]
    assert [(r["id"], r["limited"], r["sample_limit"]) for r in runs] == [(limited, True, 5), (full, False, None)]
    one = clients.viewer.get(f"/api/evals/runs/{limited}").json()
    assert one["limited"] is True and one["sample_limit"] == 5 and one["options"] == {"limit": 5}


def test_row_carries_what_judging_cost(models, seeded) -> None:
    task = _task(models, "judged-task", higher=True)
    usage = {"requests": 40, "cached": 30, "prompt_tokens": 9000, "completion_tokens": 40, "cost_usd": 0.001374}
    judged = add_run(seeded, task, "alpha", score=0.6, fingerprint={"judge_usage": usage, "judge": {"name": "j"}})
    add_run(seeded, task, "beta", score=0.5)  # exact matching: no judge counted
    rows = {r["model_name"]: r for r in _board(models, task)["data"]}
    assert rows["alpha"]["run_id"] == judged
    assert (rows["alpha"]["judge_requests"], rows["alpha"]["judge_cached"], rows["alpha"]["judge_cost_usd"]) == (
        40,
        30,
        pytest.approx(0.001374),
    )
    assert (rows["beta"]["judge_requests"], rows["beta"]["judge_cost_usd"]) == (None, None)
