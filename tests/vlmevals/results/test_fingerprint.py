"""Fingerprints for each model kind (local weights, API endpoint, VLMEvalKit registry name), what changes the
hash and what does not, and the comparability rules behind the leaderboard's drift marks."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from vlmevals.core.settings import Settings
from vlmevals.results import drift, fingerprint
from vlmevals.vlmevalkit.command import ModelSpec, TaskSpec

TASK = TaskSpec("FP_MCQ", "CustomMCQDataset")


@pytest.fixture()
def settings(tmp_path: Path) -> Settings:
    lmu = tmp_path / "LMUData"
    lmu.mkdir()
    (lmu / "FP_MCQ.tsv").write_text("index\tquestion\tA\tB\tanswer\n0\tq\tx\ty\tA\n")
    return Settings.model_validate(
        {
            "LMUData": str(lmu),
            "EVALS_MODELS_DIR": str(tmp_path / "models"),
            "VLMEVAL_OUTPUTS": str(tmp_path / "out"),
            "EVALS_JUDGE": "exact_matching",
        }
    )


def _fp(settings: Settings, model: ModelSpec, **kw: Any) -> tuple[dict[str, Any], str]:
    return fingerprint.compute(
        task=TASK,
        model=model,
        settings=settings,
        judge=kw.pop("judge", None),
        with_environment=kw.pop("with_environment", False),
        **kw,
    )


def test_local_weights(settings: Settings) -> None:
    weights = settings.models_dir / "tiny"
    weights.mkdir(parents=True)
    (weights / "model.safetensors").write_bytes(b"x" * 100)
    (weights / "config.json").write_text("{}")
    spec = ModelSpec(
        "Tiny",
        {
            "class": "DOCLING",
            "model_path": "{models_dir}/tiny",
            "max_new_tokens": 8,
            "temperature": 0.0,
            "api_key": "sk-secret",
        },
    )
    fp, h = _fp(settings, spec)
    m = fp["model"]
    assert m["kind"] == "spec" and m["class"] == "DOCLING" and m["vlmeval_model"] == "Tiny"
    assert m["kwargs"]["model_path"] == str(weights), "placeholders expanded"
    assert m["kwargs"]["api_key"] == "***", "secrets never stored"
    assert m["weights"]["files"] == 2 and m["weights"]["bytes"] == 102
    assert fp["generation"] == {"limit": None, "max_new_tokens": 8, "temperature": 0.0}
    assert fp["dataset"]["md5"] and len(fp["dataset"]["md5"]) == 32
    assert fp["toolkit"]["vlmeval"].startswith("ms-vlmeval==")
    assert _fp(settings, spec)[1] == h, "same inputs, same hash"
    (weights / "model.safetensors").write_bytes(b"y" * 101)  # new weights: new identity, new hash
    assert _fp(settings, spec)[1] != h
    revised = ModelSpec("Tiny", {"class": "Qwen2VLChat", "model_path": "Qwen/Qwen2-VL-2B", "revision": "abc123"})
    hub_weights = _fp(settings, revised)[0]["model"]["weights"]  # a Hub repo id: repo, revision and commit
    assert hub_weights["hub"] == "Qwen/Qwen2-VL-2B" and hub_weights["revision"] == "abc123"


def test_api_endpoint(settings: Settings) -> None:
    model = ModelSpec("served-model", None, "http://127.0.0.1:8000/v1", "MY_KEY")
    fp, h = _fp(settings, model)
    assert fp["model"] == {"kind": "endpoint", "served_model": "served-model", "base_url": "http://127.0.0.1:8000/v1"}
    other = ModelSpec("served-model", None, "http://127.0.0.1:9000/v1", "MY_KEY")
    assert _fp(settings, other)[1] != h, "another server may serve other weights"


def test_registry_name(settings: Settings) -> None:
    fp, h = _fp(settings, ModelSpec("InternVL2_5-2B"))
    assert fp["model"]["kind"] == "registry" and fp["model"]["vlmeval_model"] == "InternVL2_5-2B"
    assert fp["model"]["weights"]["hub"] == "OpenGVLab/InternVL2_5-2B", "its default path is a Hub repo"
    assert _fp(settings, ModelSpec("Qwen2-VL-2B-Instruct"))[1] != h


def test_hash_covers_dataset_judge_limit_but_not_environment(settings: Settings) -> None:
    model = ModelSpec("InternVL2_5-2B")
    base_fp, base = _fp(settings, model)
    assert _fp(settings, model, judge="gpt-4o-mini")[1] != base
    assert _fp(settings, model, limit=10)[1] != base
    assert _fp(settings, model, dataset_rows=123)[1] == base, "row count is informative only"
    with_env, h_env = _fp(settings, model, with_environment=True, visible_devices="0")
    assert h_env == base, "a driver or library update is not a new result"
    env = with_env["environment"]
    assert env["python"] and env["torch"] and env["transformers"] and "gpus" in env
    (settings.lmu_data / "FP_MCQ.tsv").write_text("index\tquestion\tA\tB\tanswer\n0\tq\tx\ty\tB\n")
    os.utime(settings.lmu_data / "FP_MCQ.tsv", (1, 1))  # md5 cache keyed on mtime: make it a new file version
    changed, h2 = _fp(settings, model)
    assert changed["dataset"]["md5"] != base_fp["dataset"]["md5"] and h2 != base


def test_checkout_commit_recorded(settings: Settings, tmp_path: Path) -> None:
    repo = tmp_path / "VLMEvalKit"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], check=True)
    (repo / "run.py").write_text("")
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "x"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    s = settings.model_copy(update={"vlmeval_root": repo})
    fp, _ = _fp(s, ModelSpec("InternVL2_5-2B"))
    assert fp["toolkit"]["vlmeval"] == f"git:{head[:12]}"


def _print(md5: str = "m1", judge: str = "exact_matching", version: str = "ms-vlmeval==0.0.20") -> dict[str, Any]:
    return {
        "dataset": {"md5": md5},
        "judge": {"name": judge},
        "toolkit": {"vlmeval": version},
        "model": {"kind": "registry"},
    }


def test_comparability_breaks() -> None:
    assert fingerprint.comparability_breaks(_print(), _print()) == []
    assert fingerprint.comparability_breaks(_print(), _print(md5="m2", judge="gpt")) == [
        "dataset md5 differs",
        "judge differs",
    ]
    assert fingerprint.comparability_breaks(_print(), _print(version="git:abc")) == ["VLMEvalKit version differs"]


def test_comparability_part_round_trips_the_key() -> None:
    """The leaderboard reads the compared fields as columns; the partial fingerprint compares like the full one."""
    part = fingerprint.comparability_part(fingerprint.comparability_key(_print(md5="m2")))
    assert part == {
        "dataset": {"md5": "m2"},
        "judge": {"name": "exact_matching"},
        "toolkit": {"vlmeval": "ms-vlmeval==0.0.20"},
        "serving": {"engine": None},  # in-process
    }
    assert fingerprint.comparability_breaks(part, _print()) == ["dataset md5 differs"]
    assert fingerprint.comparability_part((None, None, None, None)) is None, "no fingerprint recorded"


def test_drift_marks_against_the_majority() -> None:
    rows = [(1, _print()), (2, _print()), (3, _print(md5="m2")), (4, _print(version="git:abc")), (5, {}), (6, _print())]
    marks = drift.drift_marks(rows)
    assert marks == {
        1: [],
        2: [],
        3: ["dataset md5 differs"],
        4: ["VLMEvalKit version differs"],
        5: [drift.NO_FINGERPRINT],
        6: [],
    }
    # a tie goes to the newest run's conditions; nothing fingerprinted: nothing to compare against
    assert drift.drift_marks([(1, _print()), (2, _print(judge="gpt"))]) == {1: ["judge differs"], 2: []}
    assert drift.drift_marks([(1, None)]) == {1: [drift.NO_FINGERPRINT]}


def test_a_served_run_hashes_its_engine_and_an_in_process_hash_is_unchanged() -> None:
    """Another engine (or version) may answer differently: drift. Runs without serving keep their old hash."""
    plain = _print(md5="m1")
    before_serving = {k: plain.get(k) for k in ("toolkit", "model", "dataset", "judge", "generation")}
    old_hash = hashlib.sha256(json.dumps(before_serving, sort_keys=True, default=str).encode()).hexdigest()
    assert fingerprint.fingerprint_hash(plain) == old_hash
    vllm = {**plain, "serving": {"engine": "vllm", "version": "0.31.0", "args": []}}
    sglang = {**plain, "serving": {"engine": "sglang", "version": "0.5.0", "args": []}}
    assert len({fingerprint.fingerprint_hash(fp) for fp in (plain, vllm, sglang)}) == 3
    assert fingerprint.comparability_breaks(plain, vllm) == [
        "inference engine differs (served vs in-process, or another engine)"
    ]
