"""Real VLMEvalKit output trees for tests (a helper module, not a test file).

Parsers of VLMEvalKit's results must be tested against what VLMEvalKit really writes, not against
hand-made fixtures that drift from it. This runs ``python -m vlmeval`` exactly as the service does (the
demo model on the demo benchmarks, ``--config``, ``--judge exact_matching``, ``--reuse``, ``$LMUData``),
once per VLMEvalKit version / demo source, caches the trees under ``.local/test-cache`` and copies them
into each test's folder.

Cases (each in its own ``<case>/`` folder, VLMEvalKit run with cwd there and ``--work-dir outputs``, so the
relative paths it records in status.json stay valid after copying):

- ``ok``: MCQ (``_acc.csv``, 0-1), VQA (``_acc.csv``, 0-100) and Y/N (``_score.csv``, 0-100), exit code 0.
- ``failed``: a corrupt TSV (no image column) and a missing TSV; exit code 0, yet status.json records
  ``status: done`` with an ``error_message`` per dataset and no metrics.
- ``bad_model``: a model path that does not exist; exit code 1, status.json with ``datasets: {}``.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import vlmevals.devtools.demo.benchmark as demo_benchmark
import vlmevals.devtools.demo.model as demo_model
from vlmevals.devtools.demo.benchmark import DEMO_BENCHMARKS, md5_of, write_benchmark
from vlmevals.devtools.demo.model import DEMO_MODEL_SPEC, build_demo_model

REPO = Path(__file__).resolve().parents[1]
CACHE_ROOT = REPO / ".local" / "test-cache"
MODEL_NAME = "demo_tiny"
BAD_MODEL_NAME = "demo_bad"
WORK_DIR = "outputs"
BROKEN = "DEMO_BROKEN_MCQ"  # TSV present but without an image column
MISSING = "DEMO_MISSING_MCQ"  # TSV absent
# Per-sample files VLMEvalKit writes next to the predictions, by dataset class.
RESULT_SUFFIX = {
    "CustomMCQDataset": "_exact_matching_result.xlsx",
    "ImageVQADataset": "_results.xlsx",
    "ImageYORNDataset": "_auxmatch.xlsx",
}


def cache_key() -> str:
    """Changes whenever VLMEvalKit, transformers/torch or the demo/helper sources change."""
    h = hashlib.sha256()
    for dist in ("ms-vlmeval", "transformers", "torch", "tokenizers"):
        h.update(f"{dist}={importlib.metadata.version(dist)};".encode())
    for mod_file in (demo_benchmark.__file__, demo_model.__file__, __file__):
        h.update(Path(mod_file).read_bytes())
    return h.hexdigest()[:16]


def _vlmeval_env(lmu_dir: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"MMEVAL_ROOT", "PRED_FORMAT", "EVAL_FORMAT", "WORLD_SIZE", "RANK", "LOCAL_RANK"}
    }
    env.update(LMUData=str(lmu_dir), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    return env


def _start(case_dir: Path, config: dict[str, Any], lmu_dir: Path) -> subprocess.Popen[bytes]:
    """Start VLMEvalKit the way the service does; stdout/stderr go to ``<case>/vlmeval.log``."""
    case_dir.mkdir(parents=True)
    (case_dir / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    log = (case_dir / "vlmeval.log").open("wb")
    cmd = [
        sys.executable,
        "-m",
        "vlmeval",
        "--config",
        "config.json",
        "--work-dir",
        WORK_DIR,
        "--judge",
        "exact_matching",
        "--reuse",
    ]
    return subprocess.Popen(cmd, cwd=case_dir, env=_vlmeval_env(lmu_dir), stdout=log, stderr=subprocess.STDOUT)


def _build(dest: Path) -> None:
    """Build the whole tree into ``dest`` (three VLMEvalKit runs in parallel, ~10-20 s)."""
    lmu_dir, model_dir = dest / "LMUData", dest / "model"
    for name in DEMO_BENCHMARKS:
        write_benchmark(name, lmu_dir)
    (lmu_dir / f"{BROKEN}.tsv").write_text("index\tquestion\tA\tB\tanswer\n0\tWhich?\tx\ty\tA\n")
    build_demo_model(model_dir)
    spec = DEMO_MODEL_SPEC(model_dir)
    configs = {
        "ok": {"model": {MODEL_NAME: spec}, "data": {n: b.config_entry() for n, b in DEMO_BENCHMARKS.items()}},
        "failed": {
            "model": {MODEL_NAME: spec},
            "data": {n: {"class": "CustomMCQDataset", "dataset": n} for n in (BROKEN, MISSING)},
        },
        "bad_model": {
            "model": {BAD_MODEL_NAME: {**spec, "model_path": str(dest / "no-such-model")}},
            "data": {n: DEMO_BENCHMARKS[n].config_entry() for n in ("DEMO_SHAPES_MCQ",)},
        },
    }
    started = time.monotonic()
    procs = {case: _start(dest / case, cfg, lmu_dir) for case, cfg in configs.items()}
    manifest: dict[str, Any] = {"cache_key": cache_key(), "cases": {}}
    for case, proc in procs.items():
        rc = proc.wait(timeout=600)
        manifest["cases"][case] = {"exit_code": rc}
    manifest["seconds_all_cases_in_parallel"] = round(time.monotonic() - started, 1)
    (dest / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    ok_status = dest / "ok" / WORK_DIR / MODEL_NAME / "status.json"
    if manifest["cases"]["ok"]["exit_code"] != 0 or not ok_status.exists():
        log = (dest / "ok" / "vlmeval.log").read_text(errors="replace")[-4000:]
        raise RuntimeError(f"VLMEvalKit demo run failed: {manifest}\n{log}")


def _cached_tree() -> Path:
    """The cached tree, built once; concurrent builders race harmlessly (atomic rename)."""
    final = CACHE_ROOT / f"vlmeval-outputs-{cache_key()}"
    if (final / "manifest.json").exists():
        return final
    CACHE_ROOT.mkdir(parents=True, exist_ok=True)
    tmp = CACHE_ROOT / f".{final.name}.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        _build(tmp)
        try:
            tmp.rename(final)
        except OSError:
            if not (final / "manifest.json").exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for stale in CACHE_ROOT.glob("vlmeval-outputs-*"):  # trees of older sources/versions are dead weight
        if stale != final:
            shutil.rmtree(stale, ignore_errors=True)
    return final


def _files(model_dir: Path, model: str, name: str, dataset_class: str, metric_suffix: str) -> dict[str, Any]:
    def opt(p: Path) -> Path | None:
        return p if p.exists() else None

    prefix = f"{model}_{name}"
    return {
        "status_json": model_dir / "status.json",
        "prediction_xlsx": opt(model_dir / f"{prefix}.xlsx"),
        "metric_csv": opt(model_dir / f"{prefix}{metric_suffix}"),
        "acc_csv": opt(model_dir / f"{prefix}_acc.csv"),
        "score_csv": opt(model_dir / f"{prefix}_score.csv"),
        "result_xlsx": opt(model_dir / f"{prefix}{RESULT_SUFFIX[dataset_class]}"),
    }


def make_real_outputs(root: Path) -> dict[str, Any]:
    """Copy real VLMEvalKit output trees into ``root`` and return the interesting paths.

    Returns ``{"root", "lmu_dir", "model_dir", "cases": {case: {"exit_code", "work_dir", "model_name",
    "model_dir", "status_json", "log", "config"}}, "benchmarks": {name: {..files.., "benchmark", "tsv",
    "tsv_md5"}}, "failed_benchmarks": {name: {..files..}}}``; absent files are ``None``.
    """
    root = Path(root)
    shutil.copytree(_cached_tree(), root, symlinks=True, dirs_exist_ok=True)
    manifest = json.loads((root / "manifest.json").read_text())
    lmu_dir = root / "LMUData"
    cases: dict[str, dict[str, Any]] = {}
    for case, info in manifest["cases"].items():
        model = BAD_MODEL_NAME if case == "bad_model" else MODEL_NAME
        work_dir = root / case / WORK_DIR
        cases[case] = {
            "exit_code": info["exit_code"],
            "work_dir": work_dir,
            "model_name": model,
            "model_dir": work_dir / model,
            "status_json": work_dir / model / "status.json",
            "log": root / case / "vlmeval.log",
            "config": root / case / "config.json",
        }
    ok_dir = cases["ok"]["model_dir"]
    benchmarks = {}
    for name, bench in DEMO_BENCHMARKS.items():
        files: dict[str, Any] = _files(ok_dir, MODEL_NAME, name, bench.dataset_class, bench.metric_suffix)
        files.update(benchmark=bench, tsv=lmu_dir / f"{name}.tsv", tsv_md5=md5_of(lmu_dir / f"{name}.tsv"))
        benchmarks[name] = files
    failed_dir = cases["failed"]["model_dir"]
    failed = {n: _files(failed_dir, MODEL_NAME, n, "CustomMCQDataset", "_acc.csv") for n in (BROKEN, MISSING)}
    return {
        "root": root,
        "lmu_dir": lmu_dir,
        "model_dir": root / "model",
        "cases": cases,
        "benchmarks": benchmarks,
        "failed_benchmarks": failed,
    }


if __name__ == "__main__":  # manual use: python -m tests.vlmeval_outputs /tmp/out
    out = make_real_outputs(Path(sys.argv[1]))
    print(json.dumps(out, indent=2, default=str))
