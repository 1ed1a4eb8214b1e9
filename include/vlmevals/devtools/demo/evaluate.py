"""Score a demo checkpoint on the demo benchmarks with VLMEvalKit directly (no stack), for tests and benches.

One `python -m vlmeval --config … --mode all --judge exact_matching` call runs all the benchmarks asked for,
with the same model entry the service writes (DEMO_MODEL_SPEC); the primary metric is read from the metric
file VLMEvalKit writes and returned on 0-100.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

from vlmevals.devtools.demo.benchmark import DEMO_BENCHMARKS, write_benchmark
from vlmevals.devtools.demo.model import DEMO_MODEL_SPEC

MODEL_NAME = "demo_ckpt"


def score_checkpoint(path: Path, work: Path, names: tuple[str, ...] = tuple(DEMO_BENCHMARKS)) -> dict[str, float]:
    """benchmark name -> primary score on 0-100 of the model folder ``path``."""
    return score_checkpoints({MODEL_NAME: path}, work, names)[MODEL_NAME]


def score_checkpoints(
    paths: dict[str, Path], work: Path, names: tuple[str, ...] = tuple(DEMO_BENCHMARKS)
) -> dict[str, dict[str, float]]:
    """model name -> benchmark name -> primary score on 0-100, for several model folders in one VLMEvalKit
    process (its import, seconds, is paid once)."""
    work = Path(work)
    lmu = work / "LMUData"
    for name in names:
        write_benchmark(name, lmu)
    config = {
        "model": {model: DEMO_MODEL_SPEC(Path(path)) for model, path in paths.items()},
        "data": {n: DEMO_BENCHMARKS[n].config_entry() for n in names},
    }
    (work / "config.json").write_text(json.dumps(config))
    argv = [sys.executable, "-m", "vlmeval", "--config", str(work / "config.json"), "--work-dir", str(work / "out")]
    argv += ["--mode", "all", "--judge", "exact_matching"]
    res = subprocess.run(argv, env={**os.environ, "LMUData": str(lmu)}, cwd=work, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"VLMEvalKit failed ({res.returncode}):\n{res.stderr[-3000:]}")
    return {model: {n: _score(work / "out", model, n) for n in names} for model in paths}


def _score(out: Path, model: str, name: str) -> float:
    spec = DEMO_BENCHMARKS[name]
    found = sorted((out / model).rglob(f"{model}_{name}{spec.metric_suffix}"))
    if not found:
        raise RuntimeError(f"no metric file for {name} under {out / model}")
    with found[-1].open() as f:
        rows = list(csv.DictReader(f))
    value = next(float(r[spec.metric_key]) for r in rows if r.get(spec.metric_key))
    return value * 100 / spec.scale
