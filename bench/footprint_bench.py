"""DAG parse time of each file in dags/ and memory (PSS) of the whole local stack, idle and during an evaluation.

Parse time: for each DAG file, `--repeats` fresh processes each import Airflow (not timed) and then time one
`DagBag(dag_folder=file)` parse, as the dag-processor does per file; the median is reported.
PSS: psutil's memory_full_info().pss summed over every process of the stack (PostgreSQL, api-server, scheduler,
dag-processor, triggerer, their children: task runners and VLMEvalKit), idle after `--settle` s, and the maximum
sampled every 0.5 s while the demo evaluation (demo model x demo-shapes-mcq) runs through eval_run.

Usage: .venv/bin/python bench/footprint_bench.py [--repeats 5] [--settle 20] [--parse-only]
(`--parse-only`: the parse times alone, without starting the stack.)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, bench_stack, client, emit, log, median, trigger_dag, wait_dag, wait_dag_run

PARSE = """
import json, sys, time, warnings
warnings.simplefilter("ignore")
from airflow.dag_processing.dagbag import DagBag
t = time.perf_counter()
bag = DagBag(dag_folder=sys.argv[1])
took = time.perf_counter() - t
errors = {k: str(v)[:300] for k, v in bag.import_errors.items()}
print(json.dumps({"s": took, "dags": sorted(bag.dag_ids), "errors": errors}))
"""


def parse_times(repeats: int) -> dict[str, dict]:
    out = {}
    env = {**os.environ, "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    for f in sorted((ROOT / "dags").glob("*.py")):
        times, info = [], {}
        for _ in range(repeats):
            res = subprocess.run([sys.executable, "-c", PARSE, str(f)], capture_output=True, text=True, env=env)
            if res.returncode != 0:
                raise RuntimeError(res.stderr[-2000:])
            info = json.loads(res.stdout.strip().splitlines()[-1])
            times.append(info["s"])
        out[f.name] = {"median_ms": round(median(times) * 1000, 1), "dags": info["dags"], "errors": info["errors"]}
        log(f"{f.name}: {out[f.name]}")
    return out


def stack_pss_mb(stack) -> tuple[float, int, dict[str, dict[str, float]]]:
    """Total PSS (MB), process count, and per component (its process tree): where the memory is."""
    import psutil
    from vlmevals.devtools.stack import COMPONENTS

    roots = {name: pid for name in COMPONENTS if (pid := stack.pid(name))}
    roots["postgres"] = int((stack.home / "pgdata" / "postmaster.pid").read_text().split()[0])
    seen: set[int] = set()
    parts: dict[str, dict[str, float]] = {}
    for name, pid in roots.items():
        try:
            p = psutil.Process(pid)
            tree = [p, *p.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
        mb, n = 0.0, 0
        for q in tree:
            if q.pid in seen:
                continue
            seen.add(q.pid)
            try:
                mb += q.memory_full_info().pss / 2**20
                n += 1
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        parts[name] = {"pss_mb": round(mb, 1), "processes": n}
    return sum(v["pss_mb"] for v in parts.values()), len(seen), parts


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--settle", type=float, default=20)
    ap.add_argument("--parse-only", action="store_true", help="DAG parse times only; no stack")
    args = ap.parse_args()
    parse = parse_times(args.repeats)
    if args.parse_only:
        emit({"bench": "footprint", "parse": parse, "parse_repeats": args.repeats})
        return
    with bench_stack(gpu_slots=1) as stack:
        c = client(stack)
        wait_dag(c)
        time.sleep(args.settle)
        idle, idle_procs, idle_parts = stack_pss_mb(stack)
        peak, peak_procs, stop = [0.0], [0], threading.Event()

        def sample() -> None:
            while not stop.is_set():
                mb, n, _ = stack_pss_mb(stack)
                if mb > peak[0]:
                    peak[0], peak_procs[0] = mb, n
                time.sleep(0.5)

        t = threading.Thread(target=sample, daemon=True)
        t.start()
        dr = trigger_dag(c, {"task": "demo-shapes-mcq", "model": "demo-tiny-idefics3", "triggered_by": "rest"})
        state = wait_dag_run(c, dr)
        stop.set()
        t.join()
    emit(
        {
            "bench": "footprint",
            "parse": parse,
            "parse_repeats": args.repeats,
            "stack_pss_idle_mb": round(idle, 1),
            "idle_processes": idle_procs,
            "idle_by_component": idle_parts,
            "target_idle_mb": 800,
            "stack_pss_eval_peak_mb": round(peak[0], 1),
            "eval_peak_processes": peak_procs[0],
            "eval_state": state,
        }
    )


if __name__ == "__main__":
    main()
