"""Per-sample ingestion from real VLMEvalKit result files (tests/vlmeval_outputs.py), storage, filters, images
and the samples API on a bare FastAPI app."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from vlmevals.results import samples
from vlmevals.toolkit import outputs as results

from tests.vlmeval_outputs import MODEL_NAME, _vlmeval_env, make_real_outputs

SCALES = {"DEMO_SHAPES_MCQ": 1.0, "DEMO_COLORS_VQA": 100.0, "DEMO_SHAPES_YORN": 100.0}
FAILED_ROWS = (1, 4, 7)
FAIL_TEXT = "Failed to obtain answer via API. 500 Internal Server Error"


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return make_real_outputs(tmp_path_factory.mktemp("real"))


@pytest.fixture(scope="module")
def rescored_with_failures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Real result files of predictions where the API failed on three samples: the prediction files get
    VLMEvalKit's failure text, then VLMEvalKit itself scores them (`--mode eval --keep-failed`)."""
    out = make_real_outputs(tmp_path_factory.mktemp("failed"))
    case = out["cases"]["ok"]
    md: Path = case["model_dir"]
    for name in SCALES:
        pred = md / f"{MODEL_NAME}_{name}.xlsx"
        df = pd.read_excel(pred)
        df.loc[list(FAILED_ROWS), "prediction"] = FAIL_TEXT
        df.to_excel(pred, index=False)
        for f in md.glob(f"{MODEL_NAME}_{name}_*"):
            f.unlink()
    cfg = json.loads(case["config"].read_text())
    for spec in cfg["model"].values():
        spec["model_path"] = str(out["model_dir"])
    case["config"].write_text(json.dumps(cfg))
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "vlmeval",
            "--config",
            "config.json",
            "--work-dir",
            "outputs",
            "--judge",
            "exact_matching",
            "--reuse",
            "--mode",
            "eval",
            "--keep-failed",
        ],
        cwd=case["config"].parent,
        env=_vlmeval_env(out["lmu_dir"]),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    return out


def _official(md: Path, name: str) -> float:
    bench_suffix = {"DEMO_SHAPES_YORN": "_score.csv"}.get(name, "_acc.csv")
    table = results.read_metric_file(md / f"{MODEL_NAME}_{name}{bench_suffix}")
    value = results.pick_primary(table, "Overall")
    assert value is not None
    return value


def test_result_file_prefers_scored_files(real: dict[str, Any], tmp_path: Path) -> None:
    md = real["cases"]["ok"]["model_dir"]
    assert samples.result_file(md, MODEL_NAME, "DEMO_SHAPES_MCQ").name.endswith("_exact_matching_result.xlsx")
    assert samples.result_file(md, MODEL_NAME, "DEMO_COLORS_VQA").name.endswith("_results.xlsx")
    assert samples.result_file(md, MODEL_NAME, "DEMO_SHAPES_YORN").name.endswith("_auxmatch.xlsx")
    assert samples.result_file(md, MODEL_NAME, "NOT_RUN") is None
    only_pred = tmp_path / "p"
    only_pred.mkdir()
    (only_pred / f"{MODEL_NAME}_X.xlsx").write_bytes((md / f"{MODEL_NAME}_DEMO_SHAPES_MCQ.xlsx").read_bytes())
    assert samples.result_file(only_pred, MODEL_NAME, "X").name == f"{MODEL_NAME}_X.xlsx"


@pytest.mark.parametrize("name", list(SCALES))
def test_real_files_reproduce_vlmevalkit_score(real: dict[str, Any], name: str) -> None:
    md = real["cases"]["ok"]["model_dir"]
    got = samples.read_samples(md, MODEL_NAME, name)
    assert got is not None
    records, path = got
    assert len(records) == 20 and len({r.sample_index for r in records}) == 20
    assert [r.sample_index for r in records[:3]] == ["0", "1", "2"]
    assert {r.category for r in records} == {"colour", "shape"}
    assert all(r.question and r.answer is not None and r.prediction is not None for r in records)
    assert all(r.score in (0.0, 1.0) for r in records) and not any(r.failed for r in records)
    summary = samples.summarise(records, path.name, SCALES[name])
    assert summary.official == pytest.approx(_official(md, name)), "same score as VLMEvalKit's metric file"
    assert summary.valid_only == pytest.approx(summary.official)
    assert summary.interval is not None and summary.interval.method == "wilson"
    assert summary.interval.low <= summary.official <= summary.interval.high
    assert summary.interval.high <= SCALES[name]
    if name == "DEMO_SHAPES_MCQ":
        assert set(records[0].extra or {}) >= {"A", "B", "C", "D", "log"}, "options and judge log kept"
        assert "image" not in (records[0].extra or {})


@pytest.mark.e2e
@pytest.mark.parametrize("name", list(SCALES))
def test_failed_samples_counted_apart(rescored_with_failures: dict[str, Any], name: str) -> None:
    md = rescored_with_failures["cases"]["ok"]["model_dir"]
    got = samples.read_samples(md, MODEL_NAME, name)
    assert got is not None
    records, path = got
    assert sorted(int(r.sample_index) for r in records if r.failed) == list(FAILED_ROWS)
    summary = samples.summarise(records, path.name, SCALES[name])
    assert (summary.total, summary.failed, summary.scored) == (20, 3, 17)
    official = _official(md, name)
    assert summary.official == pytest.approx(official), "VLMEvalKit counts failed samples as wrong"
    valid_hits = sum(r.score for r in records if not r.failed and r.score is not None)
    assert summary.valid_only == pytest.approx(SCALES[name] * valid_hits / 17), "failed excluded from denominator"
    assert summary.interval is not None and summary.interval.n == 17


def test_judge_failure_marks_sample_failed() -> None:
    df = pd.DataFrame(
        {
            "index": [0, 1, 2],
            "question": ["q"] * 3,
            "answer": ["A"] * 3,
            "prediction": ["A", "maybe", "B"],
            "hit": [1, 0, 0],
            "category": ["x"] * 3,
            "log": ["Match Log: A. ", "Failed to predict, thus randomly generate one. ", "Match Log: B. "],
        }
    )
    recs = samples.parse_frame(df)
    assert [r.failed for r in recs] == [False, True, False]
    with pytest.raises(ValueError, match="no 'index' column"):
        samples.parse_frame(df.drop(columns=["index"]))


def test_prediction_only_file_has_no_interval(real: dict[str, Any], tmp_path: Path) -> None:
    md = real["cases"]["ok"]["model_dir"]
    (tmp_path / f"{MODEL_NAME}_X.xlsx").write_bytes((md / f"{MODEL_NAME}_DEMO_SHAPES_MCQ.xlsx").read_bytes())
    got = samples.read_samples(tmp_path, MODEL_NAME, "X")
    assert got is not None
    summary = samples.summarise(got[0], got[1].name)
    assert (summary.total, summary.scored, summary.interval, summary.official) == (20, 0, None, None)


@pytest.fixture()
def run_id(seeded) -> int:  # type: ignore[no-untyped-def]
    from vlmevals.db.engine import session_scope
    from vlmevals.runs import lifecycle as runs

    with session_scope(seeded) as s:
        return runs.create_run(s, "demo-shapes-mcq", "demo-tiny-idefics3", triggered_by="cli").id


@pytest.mark.integration
def test_ingest_stores_rows_idempotently(seeded, run_id: int, real: dict[str, Any]) -> None:  # type: ignore[no-untyped-def]
    from vlmevals.db.engine import session_scope

    md = real["cases"]["ok"]["model_dir"]
    metrics: dict[str, Any] = {}
    cols = samples.ingest_for_run(seeded, run_id, md, MODEL_NAME, "DEMO_SHAPES_MCQ", metrics)
    cols2 = samples.ingest_for_run(seeded, run_id, md, MODEL_NAME, "DEMO_SHAPES_MCQ", metrics)
    assert cols == cols2 and cols["samples_total"] == 20 and cols["samples_failed"] == 0
    assert 0 <= cols["ci_low"] <= metrics["samples"]["official"] <= cols["ci_high"] <= 1
    with session_scope(seeded) as s:
        all_rows, n = samples.list_samples(s, run_id, limit=1000)
        assert n == 20 and len(all_rows) == 20, "a rerun replaces, never duplicates"
        assert [r.sample_index for r in all_rows[:11]] == [str(i) for i in range(11)], "numeric order"
        _, right = samples.list_samples(s, run_id, outcome="right")
        _, wrong = samples.list_samples(s, run_id, outcome="wrong")
        _, failed = samples.list_samples(s, run_id, outcome="failed")
        assert right + wrong == 20 and failed == 0
        assert right == round(20 * metrics["samples"]["official"])
        cats = samples.categories(s, run_id)
        assert cats == {"colour": 10, "shape": 10}
        colour, nc = samples.list_samples(s, run_id, category="colour", limit=3)
        assert nc == 10 and len(colour) == 3 and {r.category for r in colour} == {"colour"}
        assert all(r.extra and "A" in r.extra for r in colour), "JSONB survives COPY"


@pytest.mark.integration
def test_ingest_hook_never_loses_the_run(seeded, run_id: int, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / f"{MODEL_NAME}_D_exact_matching_result.xlsx").write_text("not a spreadsheet")
    metrics: dict[str, Any] = {}
    assert samples.ingest_for_run(seeded, run_id, tmp_path, MODEL_NAME, "D", metrics) == {}
    assert "samples_error" in metrics and "samples" not in metrics
    assert samples.ingest_for_run(seeded, run_id, tmp_path, MODEL_NAME, "NONE", {}) == {}


def test_sample_image_from_real_tsv(real: dict[str, Any], tmp_path: Path) -> None:
    from vlmevals.core.errors import NotFoundError

    tsv = real["lmu_dir"] / "DEMO_SHAPES_MCQ.tsv"
    data, mime = samples.sample_image(tsv, "3")
    assert mime == "image/png" and data.startswith(b"\x89PNG")
    with pytest.raises(NotFoundError, match="no image"):
        samples.sample_image(tsv, "999")
    with pytest.raises(NotFoundError, match="missing"):
        samples.sample_image(tmp_path / "nope.tsv", "0")
    png = base64.b64encode(data).decode()
    multi = tmp_path / "M.tsv"
    multi.write_text("index\timage\tquestion\n0\t" + png + "\tq\n1\t0\tq\n2\t['" + png + "', '" + png + "']\tq\n")
    assert samples.sample_image(multi, "1")[0] == data, "a short cell refers to another row's image"
    assert samples.sample_image(multi, "2", 1)[0] == data
    with pytest.raises(NotFoundError, match="has 2 image"):
        samples.sample_image(multi, "2", 2)


@pytest.mark.integration
def test_samples_api(seeded, run_id: int, real: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from fastapi import FastAPI
    from fastapi.testclient import TestClient
    from vlmevals.api import errors
    from vlmevals.api.routers.samples import router
    from vlmevals.core.settings import get_settings

    monkeypatch.setenv("LMUData", str(real["lmu_dir"]))
    get_settings.cache_clear()
    md = real["cases"]["ok"]["model_dir"]
    cols = samples.ingest_for_run(seeded, run_id, md, MODEL_NAME, "DEMO_SHAPES_MCQ", {})
    from vlmevals.runs import lifecycle as runs

    runs.mark_completed(seeded, run_id, primary_metric=0.5, metrics={}, extra=cols)
    app = FastAPI(root_path="/api/evals")
    errors.install(app)
    app.include_router(router)
    try:
        with TestClient(app) as c:
            r = c.get(f"/runs/{run_id}/samples", params={"outcome": "wrong", "limit": 5})
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["total"] == 20 and body["failed"] == 0 and body["categories"] == {"colour": 10, "shape": 10}
            assert len(body["data"]) == min(5, body["count"]) and all(d["outcome"] == "wrong" for d in body["data"])
            first = body["data"][0]
            assert first["image"].endswith(f"/runs/{run_id}/samples/{first['sample_index']}/image")
            img = c.get(f"/runs/{run_id}/samples/{first['sample_index']}/image")
            assert img.status_code == 200 and img.headers["content-type"] == "image/png"
            assert c.get(f"/runs/{run_id}/samples", params={"outcome": "bogus"}).status_code == 422
            missing = c.get("/runs/999999/samples")
            assert missing.status_code == 404 and "no eval run with id 999999" in missing.json()["detail"]
            assert c.get(f"/runs/{run_id}/samples/999/image").status_code == 404
    finally:
        get_settings.cache_clear()
