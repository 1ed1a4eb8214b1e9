"""Target 8: a served model at concurrency 1 vs 16. The OpenAI-compatible test server answers each request after
`--delay-s` (0.5 s), VLMEvalKit (direct, the argv our command builder writes for an endpoint model) runs
`--questions` (200) questions of a demo MCQ benchmark with `--api-nproc` 1, then 16. No stack needed.

Two ratios, both printed, because the VLMEvalKit process has a fixed cost that does not depend on the model's
concurrency (importing VLMEvalKit, ~7 s quiet, and the interpreter's teardown of its ~6,500 modules, ~2-4 s):
- `speedup_end_to_end`: spawn to exit of the VLMEvalKit process, fixed cost included (what a user waits);
- `speedup_inference` (the figure of record for target 8, which is about concurrency): the request phase, from
  the start of the server's first chat request to the end of its last, read from the server's own counters.
Per nproc: `startup_s` (spawn -> first request), `inference_s`, `tail_s` (last answer -> exit: scoring, teardown),
the requests the server saw (must be one per question) and the most in flight at once (proves `--api-nproc`
got through). Note VLMEvalKit's BaseAPI.generate sleeps U(0, 0.5) s before every request (mean 0.25 s), so
one question costs ~0.75 s at nproc 1, not 0.5 s; `client_s_per_request` at nproc 1 shows it.

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
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit, log

DATA = "BENCH_SERVED_MCQ"


def run_once(server: Any, settings: Any, root: Path, nproc: int) -> dict[str, Any]:
    """One VLMEvalKit process at `nproc`; its wall time split at the server's first and last request."""
    from vlmevals.vlmevalkit.command import ModelSpec, TaskSpec, build_invocation

    wd = root / f"nproc{nproc}"
    wd.mkdir()
    model = ModelSpec("ServedBench", endpoint_base_url=server.base_url, gpus=0, api_nproc=nproc)
    task = TaskSpec(DATA, "CustomMCQDataset")
    inv = build_invocation(
        settings=settings, task=task, model=model, work_dir=wd, mode="all", judge="exact_matching", reuse=False
    )
    server.reset_stats()
    load = os.getloadavg()[0]
    t0 = time.time()
    res = subprocess.run(inv.argv, env={**os.environ, **inv.env}, cwd=wd, capture_output=True, text=True)
    t1 = time.time()
    if res.returncode != 0 or not list(wd.glob(f"*/*_{DATA}_acc.csv")):
        raise RuntimeError(f"VLMEvalKit at nproc {nproc} failed:\n{res.stderr[-2000:]}")
    st = server.stats()
    first, last = st["first_chat_at"], st["last_chat_end_at"]
    return {
        "argv_api_nproc": int(inv.argv[inv.argv.index("--api-nproc") + 1]),
        "wall_s": round(t1 - t0, 2),
        "startup_s": round(first - t0, 2),
        "inference_s": round(last - first, 2),
        "tail_s": round(t1 - last, 2),
        "requests": st["chat_completions"],
        "failed": st["failed"],
        "max_in_flight": st["max_in_flight"],
        "load_1m_at_start": load,
    }


def summary(runs: dict[int, dict[str, Any]], questions: int, delay_s: float) -> dict[str, Any]:
    lo, hi = min(runs), max(runs)
    a, b = runs[lo], runs[hi]
    return {
        "bench": "served_concurrency",
        "questions": questions,
        "server_delay_s": delay_s,
        "figure_of_record": f"speedup_inference_{hi}_over_{lo}",
        f"speedup_inference_{hi}_over_{lo}": round(a["inference_s"] / b["inference_s"], 2),
        f"speedup_end_to_end_{hi}_over_{lo}": round(a["wall_s"] / b["wall_s"], 2),
        "target_speedup": 10,
        "fixed_cost_s": {str(k): round(r["startup_s"] + r["tail_s"], 2) for k, r in runs.items()},
        "ideal_inference_s": {str(k): round(questions * delay_s / k, 2) for k in runs},
        "client_s_per_request": round(a["inference_s"] / max(a["requests"], 1) * lo - delay_s, 3),
        "runs": {str(k): r for k, r in runs.items()},
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--questions", type=int, default=200)
    ap.add_argument("--delay-s", type=float, default=0.5)
    ap.add_argument("--nproc", type=int, nargs="+", default=[1, 16])
    args = ap.parse_args()

    from vlmevals.core.settings import Settings
    from vlmevals.devtools.demo.benchmark import render_benchmark

    from tests.doubles.openai_server import serve

    root = Path(tempfile.mkdtemp(prefix="served-bench-"))
    lmu = root / "LMUData"
    lmu.mkdir()
    tsv = lmu / f"{DATA}.tsv"
    tsv.write_bytes(render_benchmark("DEMO_SHAPES_MCQ", n=args.questions))
    settings = Settings(LMUData=lmu)
    log("warm-up: one `import vlmeval` so the first timed run does not pay a cold page cache alone")
    subprocess.run([sys.executable, "-c", "import vlmeval"], capture_output=True, check=True)
    runs: dict[int, dict[str, Any]] = {}
    with serve(mode="oracle", tsv=str(tsv), delay_s=args.delay_s) as server:
        for nproc in args.nproc:
            runs[nproc] = run_once(server, settings, root, nproc)
            log(f"nproc {nproc}: {runs[nproc]}")
    shutil.rmtree(root, ignore_errors=True)
    emit(summary(runs, args.questions, args.delay_s))


if __name__ == "__main__":
    main()
