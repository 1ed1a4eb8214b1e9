"""The overall board of a suite: normalisation (both directions, both scales), weighted averages, mean rank
with ties, the coverage rule, best vs latest, sorting, paging, CSV and bad input."""

from __future__ import annotations

import csv
import io

import pytest

from tests.vlmevals.api.conftest import add_model, add_run

pytestmark = pytest.mark.integration
BOARD = "/api/evals/suites/mix/leaderboard"


def _task(clients, name: str, higher: bool, scale: float) -> None:
    body = {"name": name, "display_name": name.upper(), "vlmeval_data": "MMBench_DEV_EN", "higher_is_better": higher}
    r = clients.op.post("/api/evals/tasks", json={**body, "metric_scale": scale})
    assert r.status_code == 201, r.text


@pytest.fixture()
def board(clients, seeded):
    """acc: higher is better on 0-1 (weight 2); err: lower is better on 0-100; vqa: higher is better on 0-100."""
    _task(clients, "acc", True, 1.0)
    _task(clients, "err", False, 100.0)
    _task(clients, "vqa", True, 100.0)
    for m in ("alpha", "beta", "gamma", "delta", "epsilon"):
        add_model(clients.op, m)
    body = {"name": "mix", "display_name": "Mix", "tasks": [{"task": "acc", "weight": 2}, "err", "vqa"]}
    assert clients.op.post("/api/evals/suites", json=body).status_code == 201
    runs = {
        ("acc", "alpha"): 0.80,
        ("err", "alpha"): 10.0,
        ("vqa", "alpha"): 60.0,
        ("acc", "beta"): 0.70,
        ("err", "beta"): 20.0,
        ("vqa", "beta"): 60.0,
        ("acc", "gamma"): 0.80,
        ("err", "gamma"): 30.0,
        ("vqa", "gamma"): 70.0,
        ("acc", "delta"): 0.90,
    }
    ids = {pair: add_run(seeded, *pair, score=score, finished_days_ago=1) for pair, score in runs.items()}
    ids["best-err-alpha"] = add_run(seeded, "err", "alpha", score=5.0, finished_days_ago=3)  # older, better
    add_run(seeded, "err", "beta", score=1.0, status="failed")  # never counted
    add_run(seeded, "vqa", "delta", status="running")  # not a cell yet
    add_run(seeded, "err", "epsilon", status="failed")  # no cell at all: not listed
    return clients, ids


def _get(clients, q: str = "") -> dict:
    r = clients.viewer.get(f"{BOARD}{q}")
    assert r.status_code == 200, r.text
    return r.json()


def test_matrix_normalised_weighted_and_ranked(board) -> None:
    clients, ids = board
    got = _get(clients)
    assert [(c["task"], c["weight"], c["leaderboard"]) for c in got["suite"]["tasks"]] == [
        ("acc", 2.0, "/api/evals/tasks/acc/leaderboard"),
        ("err", 1.0, "/api/evals/tasks/err/leaderboard"),
        ("vqa", 1.0, "/api/evals/tasks/vqa/leaderboard"),
    ]
    rows = {r["model_name"]: r for r in got["data"]}
    assert [r["model_name"] for r in got["data"]] == ["alpha", "gamma", "beta"] and got["count"] == 3
    alpha = rows["alpha"]
    # 0-1 higher-better: 0.80 -> 80; 0-100 lower-better: best is the older 5.0 -> 95; 0-100 higher-better: 60
    assert {t: c["value"] for t, c in alpha["cells"].items()} == pytest.approx({"acc": 80.0, "err": 95.0, "vqa": 60.0})
    assert alpha["cells"]["err"]["score"] == 5.0 and alpha["cells"]["err"]["run_id"] == ids["best-err-alpha"]
    assert alpha["cells"]["acc"]["link"] == f"/api/evals/runs/{ids[('acc', 'alpha')]}"
    assert alpha["average"] == pytest.approx((2 * 80 + 95 + 60) / 4)
    assert rows["gamma"]["average"] == pytest.approx((2 * 80 + 70 + 70) / 4)
    assert rows["beta"]["average"] == pytest.approx((2 * 70 + 80 + 60) / 4)
    assert [rows[m]["rank"] for m in ("alpha", "gamma", "beta")] == [1, 2, 3]
    # per-task competition ranks with ties: acc alpha=gamma=1, beta 3; vqa gamma 1, alpha=beta=2
    assert {m: r["cells"]["acc"]["task_rank"] for m, r in rows.items()} == {"alpha": 1, "gamma": 1, "beta": 3}
    assert {m: r["cells"]["vqa"]["task_rank"] for m, r in rows.items()} == {"alpha": 2, "gamma": 1, "beta": 2}
    assert alpha["mean_rank"] == pytest.approx(4 / 3) and rows["gamma"]["mean_rank"] == pytest.approx(5 / 3)
    assert rows["beta"]["mean_rank"] == pytest.approx(7 / 3)
    assert all(r["coverage"] == "3/3" and r["covered"] == 3 for r in got["data"])


def test_models_missing_tasks_are_listed_apart(board) -> None:
    clients, _ = board
    got = _get(clients)
    assert got["partial_count"] == 1
    (delta,) = got["partial"]
    assert delta["model_name"] == "delta" and delta["rank"] is None and delta["mean_rank"] is None
    assert delta["coverage"] == "1/3" and delta["average"] == pytest.approx(90.0)
    assert delta["cells"]["err"] is None and delta["cells"]["acc"]["task_rank"] is None
    assert "delta" not in {r["model_name"] for r in got["data"]}
    assert "epsilon" not in {r["model_name"] for r in got["data"] + got["partial"]}


def test_latest_pick(board) -> None:
    clients, _ = board
    rows = {r["model_name"]: r for r in _get(clients, "?pick=latest")["data"]}
    assert rows["alpha"]["cells"]["err"]["value"] == pytest.approx(90.0)
    assert rows["alpha"]["average"] == pytest.approx((2 * 80 + 90 + 60) / 4)


@pytest.mark.parametrize(
    ("q", "order"),
    [
        ("?sort=average", ["alpha", "gamma", "beta"]),
        ("?sort=average&order=asc", ["beta", "gamma", "alpha"]),
        ("?sort=mean_rank", ["alpha", "gamma", "beta"]),
        ("?sort=err", ["alpha", "beta", "gamma"]),
        ("?sort=err&order=asc", ["gamma", "beta", "alpha"]),
        ("?sort=vqa", ["gamma", "alpha", "beta"]),
        ("?sort=model&order=desc", ["gamma", "beta", "alpha"]),
        ("?sort=rank&order=desc", ["beta", "gamma", "alpha"]),
    ],
)
def test_sort_by_any_column(board, q: str, order: list[str]) -> None:
    clients, _ = board
    assert [r["model_name"] for r in _get(clients, q)["data"]] == order


def test_paging_keeps_ranks_over_all_models(board) -> None:
    clients, _ = board
    page = _get(clients, "?limit=1&offset=1")
    assert [(r["rank"], r["model_name"]) for r in page["data"]] == [(2, "gamma")] and page["count"] == 3
    assert _get(clients, "?limit=2&offset=5")["data"] == []


def test_csv_export(board) -> None:
    clients, _ = board
    r = clients.viewer.get(f"{BOARD}?format=csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "mix-overall.csv" in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [row["model_name"] for row in rows] == ["alpha", "gamma", "beta", "delta"]
    assert rows[0]["rank"] == "1" and float(rows[0]["err"]) == pytest.approx(95.0)
    assert float(rows[0]["average"]) == pytest.approx(78.75) and rows[0]["coverage"] == "3/3"
    assert rows[3]["rank"] == "" and rows[3]["err"] == "" and rows[3]["coverage"] == "1/3"


def test_bad_input(board) -> None:
    clients, _ = board
    r = clients.viewer.get(f"{BOARD}?sort=bogus")
    assert r.status_code == 422 and "sort" in r.json()["detail"] and "mean_rank" in r.json()["detail"]
    assert "acc" in r.json()["detail"]
    assert clients.viewer.get(f"{BOARD}?pick=worst").status_code == 422
    assert clients.viewer.get(f"{BOARD}?order=up").status_code == 422
    assert clients.viewer.get(f"{BOARD}?limit=0").status_code == 422
    assert clients.viewer.get(f"{BOARD}?format=xml").status_code == 422
    r = clients.viewer.get("/api/evals/suites/nope/leaderboard")
    assert r.status_code == 404 and "unknown suite" in r.json()["detail"]


def test_empty_board(clients, seeded) -> None:
    got = clients.viewer.get("/api/evals/suites/demo/leaderboard").json()
    assert got["data"] == [] and got["partial"] == [] and got["count"] == 0
    assert [c["task"] for c in got["suite"]["tasks"]] == ["demo-shapes-mcq", "demo-colors-vqa", "demo-shapes-yorn"]


def test_cached_page_follows_new_runs(board, seeded) -> None:
    """The board and its rendered pages are cached per process: a repeat is identical, a new run shows."""
    clients, _ = board
    first = _get(clients)
    assert _get(clients) == first
    assert "delta" not in [r["model_name"] for r in first["data"]]
    add_run(seeded, "err", "delta", score=1.0)
    add_run(seeded, "vqa", "delta", score=99.0)
    got = _get(clients)
    assert "delta" in [r["model_name"] for r in got["data"]] and got["count"] == first["count"] + 1


def test_gzip_answered_when_accepted_plain_otherwise(board) -> None:
    """Through Airflow's app (its GZipMiddleware included): the page's own gzip bytes, compressed once, for a
    client taking gzip; plain JSON for one that does not; the same content either way."""
    clients, _ = board
    zipped = clients.viewer.get(BOARD, headers={"Accept-Encoding": "gzip"})
    plain = clients.viewer.get(BOARD, headers={"Accept-Encoding": "identity"})
    refused = clients.viewer.get(BOARD, headers={"Accept-Encoding": "gzip;q=0, identity"})  # middleware: its own rule
    assert zipped.status_code == plain.status_code == refused.status_code == 200
    assert zipped.headers["content-encoding"] == "gzip" and zipped.headers["content-type"] == "application/json"
    assert "content-encoding" not in plain.headers
    assert zipped.headers["vary"] == plain.headers["vary"] == "Accept-Encoding"  # once, not twice
    assert zipped.json() == plain.json() == refused.json()
    assert [r["model_name"] for r in plain.json()["data"]] == ["alpha", "gamma", "beta"]


def test_limited_runs_make_cells_only_on_request(clients, seeded) -> None:
    """A smoke test (`limit: 5`) scoring 20 after a full run scoring 10 is no cell of the board by default; asked
    for, it is one, marked; the cached board is kept apart per include_limited."""
    task, model = "demo-shapes-yorn", "demo-tiny-idefics3"
    full = add_run(seeded, task, model, score=10.0, finished_days_ago=2)
    limited = add_run(seeded, task, model, score=20.0, finished_days_ago=1, options={"limit": 5})
    url = "/api/evals/suites/demo/leaderboard"
    for pick in ("best", "latest"):
        for _ in range(2):
            got = clients.viewer.get(f"{url}?pick={pick}").json()
            cell = got["partial"][0]["cells"][task]
            assert (cell["run_id"], cell["score"], cell["limited"], cell["sample_limit"]) == (full, 10.0, False, None)
            assert got["include_limited"] is False
            asked = clients.viewer.get(f"{url}?pick={pick}&include_limited=true").json()
            cell = asked["partial"][0]["cells"][task]
            assert (cell["run_id"], cell["score"], cell["limited"], cell["sample_limit"]) == (limited, 20.0, True, 5)
            assert asked["include_limited"] is True
