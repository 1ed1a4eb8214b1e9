"""Target 8: a served model at concurrency 1 vs 16. The OpenAI-compatible test server answers each request after
`--delay-s` (0.5 s), VLMEvalKit (direct, the argv our command builder writes for an endpoint model) runs
`--questions` (200) questions of a demo MCQ benchmark with `--api-nproc` 1, then 16. Prints the wall times, the
speed-up (target >= 10x) and the machine load. No stack needed.

Usage: .venv/bin/python bench/served_concurrency_bench.py [--questions 200] [--delay-s 0.5] [--nproc 1 16]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit, log

DATA = "BENCH_SERVED_MCQ"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--questions", type=int, default=200)
    ap.add_argument("--delay-s", type=float, default=0.5)
    ap.add_argument("--nproc", type=int, nargs="+", default=[1, 16])
    args = ap.parse_args()

    from vlmevals.core.settings import Settings
    from vlmevals.devtools.demo.benchmark import render_benchmark
    from vlmevals.devtools.openai_server import serve
    from vlmevals.toolkit.command import ModelSpec, TaskSpec, build_invocation

    root = Path(tempfile.mkdtemp(prefix="served-bench-"))
    lmu = root / "LMUData"
    lmu.mkdir()
    tsv = lmu / f"{DATA}.tsv"
    tsv.write_bytes(render_benchmark("DEMO_SHAPES_MCQ", n=args.questions))
    settings = Settings(LMUData=lmu)
    load_start = os.getloadavg()[0]
    walls: dict[int, float] = {}
    with serve(mode="oracle", tsv=str(tsv), delay_s=args.delay_s) as server:
        for nproc in args.nproc:
            wd = root / f"nproc{nproc}"
            wd.mkdir()
            model = ModelSpec("ServedBench", endpoint_base_url=server.base_url, gpus=0, api_nproc=nproc)
            inv = build_invocation(
                settings=settings,
                task=TaskSpec(DATA, "CustomMCQDataset"),
                model=model,
                work_dir=wd,
                mode="all",
                judge="exact_matching",
                reuse=False,
            )
            t0 = time.monotonic()
            res = subprocess.run(inv.argv, env={**os.environ, **inv.env}, cwd=wd, capture_output=True, text=True)
            walls[nproc] = time.monotonic() - t0
            if res.returncode != 0 or not list(wd.glob(f"*/*_{DATA}_acc.csv")):
                raise RuntimeError(f"VLMEvalKit at nproc {nproc} failed:\n{res.stderr[-2000:]}")
            log(f"nproc {nproc}: {walls[nproc]:.1f} s")
    shutil.rmtree(root, ignore_errors=True)
    lo, hi = min(args.nproc), max(args.nproc)
    emit(
        {
            "bench": "served_concurrency",
            "questions": args.questions,
            "server_delay_s": args.delay_s,
            "wall_s": {str(k): round(v, 2) for k, v in walls.items()},
            f"speedup_{hi}_over_{lo}": round(walls[lo] / walls[hi], 2),
            "target_speedup": 10,
            "load_1m_at_start": load_start,
        }
    )


if __name__ == "__main__":
    main()
