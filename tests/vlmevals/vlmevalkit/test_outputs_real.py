"""The readers on files VLMEvalKit really wrote (demo model, demo benchmarks; see tests/vlmeval_outputs.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from vlmevals.core.errors import VLMEvalFailure
from vlmevals.vlmevalkit.outputs import (
    collect_metrics,
    dataset_entry,
    entry_error,
    load_status,
    prediction_file,
    read_metric_file,
)

from tests.vlmeval_outputs import BROKEN, MISSING, MODEL_NAME, make_real_outputs

pytestmark = pytest.mark.e2e  # builds the cache by running VLMEvalKit on first use


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return make_real_outputs(tmp_path_factory.mktemp("real"))


@pytest.mark.parametrize("name, scale", [("DEMO_SHAPES_MCQ", 1), ("DEMO_COLORS_VQA", 100), ("DEMO_SHAPES_YORN", 100)])
def test_metrics_of_each_kind(real: dict[str, Any], name: str, scale: int) -> None:
    bench = real["benchmarks"][name]
    pred_root = real["cases"]["ok"]["model_dir"]
    got = collect_metrics(
        pred_root,
        model=MODEL_NAME,
        data=name,
        suffix=bench["benchmark"].metric_suffix,
        key=bench["benchmark"].metric_key,
    )
    assert got.metric_file == bench["metric_csv"]
    assert 0 <= got.primary_metric <= scale
    # what status.json reports agrees with the metric file, cell by cell
    status_metrics = dataset_entry(load_status(pred_root), name)["metrics"]
    for key, value in status_metrics.items():
        assert got.metrics["table"][key] == pytest.approx(value), key
    # per-category cells survive next to the overall score
    assert len(got.metrics["table"]) >= 3
    assert prediction_file(pred_root, MODEL_NAME, name) == bench["prediction_xlsx"]


def test_mcq_scale_is_fraction_and_vqa_is_percent(real: dict[str, Any]) -> None:
    mcq = read_metric_file(real["benchmarks"]["DEMO_SHAPES_MCQ"]["acc_csv"])
    vqa = read_metric_file(real["benchmarks"]["DEMO_COLORS_VQA"]["acc_csv"])
    assert "split=none|Overall" in mcq and all(0 <= v <= 1 for v in mcq.values())
    assert "Overall" in vqa and max(vqa.values()) <= 100


@pytest.mark.parametrize("name", [BROKEN, MISSING])
def test_status_json_error_with_exit_code_zero(real: dict[str, Any], name: str) -> None:
    case = real["cases"]["failed"]
    assert case["exit_code"] == 0  # VLMEvalKit says nothing went wrong...
    entry = dataset_entry(load_status(case["model_dir"]), name)
    assert entry["status"] == "done" and entry_error(entry)  # ...status.json knows better
    with pytest.raises(VLMEvalFailure, match="reported a failure"):
        collect_metrics(case["model_dir"], model=MODEL_NAME, data=name, suffix="_acc.csv", key="Overall")


def test_crash_leaves_no_dataset_entry(real: dict[str, Any]) -> None:
    case = real["cases"]["bad_model"]
    assert case["exit_code"] != 0
    status = json.loads(Path(case["status_json"]).read_text()) if Path(case["status_json"]).exists() else {}
    assert not status.get("datasets")
