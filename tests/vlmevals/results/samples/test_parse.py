"""Per-sample files as VLMEvalKit really writes them (tests/vlmeval_outputs.py): which file is read, the records
parsed from it, failure markers, and the summary (official and valid-only score, interval).

The tests on `real` files are `integration`: on a fresh machine the fixture runs VLMEvalKit to write them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from vlmevals.results.samples.parse import parse_frame, read_samples, result_file
from vlmevals.results.samples.summary import summarise
from vlmevals.vlmevalkit import outputs

from tests.vlmeval_outputs import MODEL_NAME, _vlmeval_env, make_real_outputs

SCALES = {"DEMO_SHAPES_MCQ": 1.0, "DEMO_COLORS_VQA": 100.0, "DEMO_SHAPES_YORN": 100.0}
FAILED_ROWS = (1, 4, 7)
FAIL_TEXT = "Failed to obtain answer via API. 500 Internal Server Error"


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
    table = outputs.read_metric_file(md / f"{MODEL_NAME}_{name}{bench_suffix}")
    value = outputs.pick_primary(table, "Overall")
    assert value is not None
    return value


@pytest.mark.integration  # `real` starts VLMEvalKit when its cached output tree is missing
def test_result_file_prefers_scored_files(real: dict[str, Any], tmp_path: Path) -> None:
    md = real["cases"]["ok"]["model_dir"]
    assert result_file(md, MODEL_NAME, "DEMO_SHAPES_MCQ").name.endswith("_exact_matching_result.xlsx")
    assert result_file(md, MODEL_NAME, "DEMO_COLORS_VQA").name.endswith("_results.xlsx")
    assert result_file(md, MODEL_NAME, "DEMO_SHAPES_YORN").name.endswith("_auxmatch.xlsx")
    assert result_file(md, MODEL_NAME, "NOT_RUN") is None
    only_pred = tmp_path / "p"
    only_pred.mkdir()
    (only_pred / f"{MODEL_NAME}_X.xlsx").write_bytes((md / f"{MODEL_NAME}_DEMO_SHAPES_MCQ.xlsx").read_bytes())
    assert result_file(only_pred, MODEL_NAME, "X").name == f"{MODEL_NAME}_X.xlsx"


@pytest.mark.integration  # `real` starts VLMEvalKit when its cached output tree is missing
@pytest.mark.parametrize("name", list(SCALES))
def test_real_files_reproduce_vlmevalkit_score(real: dict[str, Any], name: str) -> None:
    md = real["cases"]["ok"]["model_dir"]
    got = read_samples(md, MODEL_NAME, name)
    assert got is not None
    records, path = got
    assert len(records) == 20 and len({r.sample_index for r in records}) == 20
    assert [r.sample_index for r in records[:3]] == ["0", "1", "2"]
    assert {r.category for r in records} == {"colour", "shape"}
    assert all(r.question and r.answer is not None and r.prediction is not None for r in records)
    assert all(r.score in (0.0, 1.0) for r in records) and not any(r.failed for r in records)
    summary = summarise(records, path.name, SCALES[name])
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
    got = read_samples(md, MODEL_NAME, name)
    assert got is not None
    records, path = got
    assert sorted(int(r.sample_index) for r in records if r.failed) == list(FAILED_ROWS)
    summary = summarise(records, path.name, SCALES[name])
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
    recs = parse_frame(df)
    assert [r.failed for r in recs] == [False, True, False]
    with pytest.raises(ValueError, match="no 'index' column"):
        parse_frame(df.drop(columns=["index"]))


@pytest.mark.integration  # `real` starts VLMEvalKit when its cached output tree is missing
def test_prediction_only_file_has_no_interval(real: dict[str, Any], tmp_path: Path) -> None:
    md = real["cases"]["ok"]["model_dir"]
    (tmp_path / f"{MODEL_NAME}_X.xlsx").write_bytes((md / f"{MODEL_NAME}_DEMO_SHAPES_MCQ.xlsx").read_bytes())
    got = read_samples(tmp_path, MODEL_NAME, "X")
    assert got is not None
    summary = summarise(got[0], got[1].name)
    assert (summary.total, summary.scored, summary.interval, summary.official) == (20, 0, None, None)
