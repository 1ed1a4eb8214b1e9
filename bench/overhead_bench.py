"""Orchestration overhead: one evaluation (the demo model on a 200-question demo MCQ benchmark) run directly with
VLMEvalKit's CLI and through the `eval_run` DAG on a running stack, alternated in one invocation: per round
direct, direct behind our launcher, DAG.

Direct = `python -m vlmeval --config ... --mode all --judge exact_matching` (the same config our command builder
writes), timed from spawn to exit; each round also times the same command behind our launcher (`FREEZE_AT_EXIT`,
what the DAG runs: VLMEvalKit's CLI, then no final garbage collection), so the orchestration's own cost
(`fixed_cost_vs_launcher_s`) is shown apart from what the launcher saves. DAG = `POST
/api/v2/dags/eval_run/dagRuns` to the DAG run observed `success` (polled every 0.2 s). Prints medians, the fixed
cost median(DAG) - median(direct) (target <= 3 s), the ratio DAG / direct (target <= 1.10 on a ~60 s job:
`--questions 1000`), per DAG run its wall time outside the VLMEvalKit process (orchestration's own cost, less
sensitive to load than a difference of medians), and the last DAG run's profile: per-task durations and its
timeline (each task's queued/start/end after the DAG run was created, and the hand-off gap before each task).

Usage: .venv/bin/python bench/overhead_bench.py [--pairs 3] [--questions 200]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    bench_stack,
    client,
    emit,
    log,
    median,
    task_durations,
    timeline,
    trigger_dag,
    wait_dag,
    wait_dag_run,
)

DATA = "BENCH_SHAPES_200"
TASK = "bench-shapes-200"
MODEL = "demo-tiny-idefics3"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--questions", "--n", dest="n", type=int, default=200, help="questions in the benchmark")
    args = ap.parse_args()
    with bench_stack(gpu_slots=1) as stack:
        from vlmevals.core.settings import get_settings
        from vlmevals.db.engine import get_engine, session_scope
        from vlmevals.db.models import Model, Task
        from vlmevals.devtools.demo.benchmark import render_benchmark
        from vlmevals.vlmevalkit.command import (
            FREEZE_AT_EXIT,
            ModelSpec,
            TaskSpec,
            build_invocation,
            write_config,
        )

        settings = get_settings()
        (settings.lmu_data / f"{DATA}.tsv").write_bytes(render_benchmark("DEMO_SHAPES_MCQ", n=args.n))
        with session_scope(get_engine(stack.database_url)) as s:
            s.add(
                Task(
                    name=TASK,
                    display_name=f"Shapes x{args.n}",
                    vlmeval_data=DATA,
                    vlmeval_dataset_class="CustomMCQDataset",
                )
            )
            m = s.query(Model).filter_by(name=MODEL).one()
            spec = ModelSpec(m.vlmeval_model, m.model_spec, None, None, m.gpus, m.launch_mode)
        c = client(stack)
        wait_dag(c)
        work = Path(tempfile.mkdtemp(prefix="overhead-direct-"))

        def direct(i: int, stock: bool = True) -> float:
            """stock: `python -m vlmeval` as a user would run it; else behind our launcher (FREEZE_AT_EXIT)."""
            wd = work / f"{i}-{'stock' if stock else 'launcher'}"
            inv = build_invocation(
                settings=settings,
                task=TaskSpec(DATA, "CustomMCQDataset"),
                model=spec,
                work_dir=wd,
                mode="all",
                judge="exact_matching",
                reuse=False,
            )
            write_config(inv, wd / "vlmeval_config.json")
            argv = [inv.argv[0], *inv.argv[3:]] if stock and inv.argv[1:3] == ["-c", FREEZE_AT_EXIT] else inv.argv
            t0 = time.monotonic()
            res = subprocess.run(argv, env={**os.environ, **inv.env}, cwd=wd, capture_output=True, text=True)
            took = time.monotonic() - t0
            if res.returncode != 0 or not list(wd.glob(f"*/*_{DATA}_acc.csv")):
                raise RuntimeError(f"direct run failed:\n{res.stderr[-2000:]}")
            return took

        last_breakdown: dict[str, float] = {}
        last_timeline: dict[str, object] = {}
        outside: list[float] = []  # per DAG run: its wall time outside the VLMEvalKit process

        def via_dag() -> float:
            nonlocal last_breakdown, last_timeline
            t0 = time.monotonic()
            dr = trigger_dag(c, {"task": TASK, "model": MODEL, "triggered_by": "rest"})
            state = wait_dag_run(c, dr)
            took = time.monotonic() - t0
            if state != "success":
                raise RuntimeError(f"DAG run {dr} ended {state}")
            last_breakdown = task_durations(c, dr)
            last_timeline = timeline(c, dr)
            outside.append(round(took - vlmeval_seconds(dr), 2))
            return took

        def vlmeval_seconds(dag_run_id: str) -> float:
            """The DAG run's VLMEvalKit process: its `running` event (just before the spawn) to status.json's
            last write. DAG wall time minus this is what orchestration cost, even when load slows VLMEvalKit."""
            from sqlalchemy import select
            from vlmevals.db.models import EvalRun, EvalRunEvent

            with session_scope(get_engine(stack.database_url)) as s:
                run = s.scalars(select(EvalRun).where(EvalRun.dag_run_id == dag_run_id)).one()
                ev = s.scalars(
                    select(EvalRunEvent)
                    .where(EvalRunEvent.run_id == run.id, EvalRunEvent.status == "running")
                    .order_by(EvalRunEvent.id)
                ).first()
                status_json = Path(run.artifacts_dir or "") / run.model.vlmeval_model / "status.json"
                return status_json.stat().st_mtime - ev.at.timestamp() if ev else 0.0

        directs: list[float] = []
        launched: list[float] = []
        dags: list[float] = []
        for i in range(args.pairs):
            directs.append(direct(i))
            launched.append(direct(i, stock=False))
            dags.append(via_dag())
            log(
                f"round {i + 1}: direct {directs[-1]:.1f} s, direct behind the launcher {launched[-1]:.1f} s, "
                f"DAG {dags[-1]:.1f} s, load {os.getloadavg()[0]:.2f}"
            )
        md, ml, mg = median(directs), median(launched), median(dags)
        emit(
            {
                "bench": "orchestration_overhead",
                "questions": args.n,
                "pairs": args.pairs,
                "direct_s": [round(x, 2) for x in directs],
                "dag_s": [round(x, 2) for x in dags],
                "direct_median_s": round(md, 2),
                "dag_median_s": round(mg, 2),
                "direct_launcher_s": [round(x, 2) for x in launched],
                "direct_launcher_median_s": round(ml, 2),
                "fixed_cost_s": round(mg - md, 2),
                "fixed_cost_vs_launcher_s": round(mg - ml, 2),
                "target_fixed_cost_s": 3.0,
                "dag_outside_vlmeval_s": outside,
                "dag_outside_vlmeval_median_s": round(median(outside), 2),
                "ratio_dag_over_direct": round(mg / md, 3),
                "target_ratio": 1.10,
                "last_dag_task_durations_s": last_breakdown,
                "last_dag_timeline": last_timeline,
            }
        )


if __name__ == "__main__":
    main()
