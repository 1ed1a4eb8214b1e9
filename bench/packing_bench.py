"""Pool packing: `--runs` eval runs queued at once on a `--slots`-slot `gpu` pool, each an inference of known length
(a served test model answering `--samples` questions after `--delay` s each, one request at a time).

makespan = last inference end - first inference start (Airflow's task instance times); ideal = sum of the
inference durations / slots (a perfectly packed pool). Prints makespan / ideal (target <= 1.15), and the
trigger-to-last-result wall time.

Usage: .venv/bin/python bench/packing_bench.py [--runs 20] [--slots 2] [--samples 10] [--delay 0.5]
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import bench_stack, client, emit, log, wait_dag, wait_dag_run
from _served import TASK, setup_served


def _ts(s: str) -> float:
    return dt.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--slots", type=int, default=2)
    ap.add_argument("--samples", type=int, default=10)
    ap.add_argument("--delay", type=float, default=0.5)
    args = ap.parse_args()
    with bench_stack(gpu_slots=args.slots) as stack:
        server, names = setup_served(stack, args.runs, n=args.samples, delay_s=args.delay)
        c = client(stack)
        wait_dag(c)
        t0 = time.monotonic()
        dag_runs = []
        for name in names:
            r = c.post(f"/api/evals/tasks/{TASK}/runs", json={"model_name": name, "options": {"api_nproc": 1}})
            r.raise_for_status()
            dag_runs.append(r.json()["dag_run_id"])
        states = [wait_dag_run(c, d, timeout_s=900, poll_s=1.0) for d in dag_runs]
        wall = time.monotonic() - t0
        spans = []
        for d in dag_runs:
            ti = c.get(f"/api/v2/dags/eval_run/dagRuns/{d}/taskInstances/inference").json()
            if ti.get("start_date") and ti.get("end_date"):
                spans.append((_ts(ti["start_date"]), _ts(ti["end_date"])))
        server.stop()
    durations = [e - s for s, e in spans]
    makespan = max(e for _, e in spans) - min(s for s, _ in spans)
    ideal = sum(durations) / args.slots
    log(f"states {states}")
    emit(
        {
            "bench": "pool_packing",
            "runs": args.runs,
            "slots": args.slots,
            "samples": args.samples,
            "delay_s": args.delay,
            "succeeded": states.count("success"),
            "inference_mean_s": round(sum(durations) / len(durations), 2),
            "makespan_s": round(makespan, 2),
            "ideal_makespan_s": round(ideal, 2),
            "ratio_makespan_over_ideal": round(makespan / ideal, 3),
            "trigger_to_all_done_s": round(wall, 1),
            "target_ratio": 1.15,
        }
    )


if __name__ == "__main__":
    main()
