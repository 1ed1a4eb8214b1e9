"""The demo benchmarks and demo model: deterministic, well-formed, and really runnable by VLMEvalKit."""

from __future__ import annotations

import ast
import base64
import csv
import io
import json
from pathlib import Path

import pytest
from PIL import Image
from vlmevals.devtools.demo.benchmark import DEMO_BENCHMARKS, LETTERS, md5_of, write_benchmark
from vlmevals.devtools.demo.model import DEMO_MODEL_SPEC, MARKER, build_demo_model


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))


def _tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("name", sorted(DEMO_BENCHMARKS))
def test_benchmark_is_deterministic_and_idempotent(tmp_path: Path, name: str) -> None:
    a = write_benchmark(name, tmp_path / "a")
    b = write_benchmark(name, tmp_path / "b")
    assert a.name == f"{name}.tsv"
    assert md5_of(a) == md5_of(b)
    mtime = a.stat().st_mtime_ns
    assert write_benchmark(name, tmp_path / "a") == a
    assert a.stat().st_mtime_ns == mtime  # untouched when already identical
    big = write_benchmark(name, tmp_path / "c", n=200)
    assert len(_rows(big)) == 200
    assert md5_of(big) == md5_of(write_benchmark(name, tmp_path / "d", n=200))
    assert md5_of(big) != md5_of(a)


@pytest.mark.parametrize("name", sorted(DEMO_BENCHMARKS))
def test_benchmark_tsv_columns_are_valid(tmp_path: Path, name: str) -> None:
    spec = DEMO_BENCHMARKS[name]
    rows = _rows(write_benchmark(name, tmp_path, n=40))
    assert len(rows) == 40
    assert tuple(rows[0]) == spec.columns
    assert [r["index"] for r in rows] == [str(i) for i in range(40)]
    assert spec.scale in (1, 100)
    assert spec.config_entry() == {"class": spec.dataset_class, "dataset": name}
    for row in rows:
        img = Image.open(io.BytesIO(base64.b64decode(row["image"])))
        assert img.format == "PNG"
        assert img.size == (32, 32)
        assert row["question"]
        assert row["category"] in {"colour", "shape"}
        if spec.dataset_class == "CustomMCQDataset":
            assert row["answer"] in LETTERS
            assert len({row[letter] for letter in LETTERS}) == 4
        elif spec.dataset_class == "ImageVQADataset":
            answers = ast.literal_eval(row["answer"])
            assert isinstance(answers, list)
            assert len(answers) == 10
        else:
            assert row["answer"] in {"Yes", "No"}
    assert len({r["category"] for r in rows}) == 2


def test_demo_model_is_deterministic(tmp_path: Path) -> None:
    a = build_demo_model(tmp_path / "a")
    b = build_demo_model(tmp_path / "b")
    assert (a / MARKER).exists()
    assert (a / "model.safetensors").exists()
    assert _tree_bytes(a) == _tree_bytes(b)
    config = json.loads((a / "config.json").read_text())
    assert config["architectures"] == ["Idefics3ForConditionalGeneration"]
    tok_config = json.loads((a / "tokenizer_config.json").read_text())
    assert tok_config["model_input_names"] == ["input_ids", "attention_mask"]
    # Idempotent: a second call with the marker present rewrites nothing.
    mtime = (a / "model.safetensors").stat().st_mtime_ns
    assert build_demo_model(a) == a
    assert (a / "model.safetensors").stat().st_mtime_ns == mtime
    spec = DEMO_MODEL_SPEC(a)
    assert spec["class"] == "DOCLING"
    assert spec["model_path"] == str(a)


@pytest.mark.e2e
def test_real_vlmeval_run_writes_metrics_in_range(tmp_path: Path) -> None:
    from tests.vlmeval_outputs import make_real_outputs

    out = make_real_outputs(tmp_path)
    ok = out["cases"]["ok"]
    assert ok["exit_code"] == 0
    status = json.loads(ok["status_json"].read_text())
    for name, files in out["benchmarks"].items():
        bench = files["benchmark"]
        entry = status["datasets"][name]
        assert entry["status"] == "done"
        assert not entry.get("error_message")
        assert files["prediction_xlsx"] is not None
        assert files["result_xlsx"] is not None
        assert files["metric_csv"] is not None
        assert files["metric_csv"].name == f"demo_tiny_{name}{bench.metric_suffix}"
        (row,) = list(csv.DictReader(files["metric_csv"].open()))
        score = float(row[bench.metric_key])
        assert 0.0 <= score <= bench.scale
        assert score > 0  # the seed is chosen so that every demo benchmark scores above zero
        flat = {k.rsplit("|", 1)[-1]: v for k, v in entry["metrics"].items()}
        assert flat[bench.metric_key] == pytest.approx(score)

    failed = out["cases"]["failed"]
    assert failed["exit_code"] == 0  # VLMEvalKit exits 0 although every dataset failed
    failed_status = json.loads(failed["status_json"].read_text())["datasets"]
    for name in out["failed_benchmarks"]:
        assert failed_status[name]["status"] == "done"
        assert failed_status[name]["error_message"]
        assert "metrics" not in failed_status[name]

    bad = out["cases"]["bad_model"]
    assert bad["exit_code"] != 0
    assert json.loads(bad["status_json"].read_text())["datasets"] == {}
