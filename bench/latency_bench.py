"""Trigger latency on LocalExecutor: (a) from `POST /api/evals/tasks/{t}/runs` to the inference subprocess starting,
(b) from VLMEvalKit finishing to the metrics being visible in the leaderboard endpoint; p50/p95 over `--runs` runs.

Each run evaluates its own served model (the OpenAI-compatible test server, `--limit` samples) so its leaderboard row
appears exactly when its metrics are stored. Runs are triggered one after another, the next once the previous DAG
run has ended, so (a) never includes waiting for a pool slot or for the previous run's last tasks (the inference
task keeps its pool slot until its process exits, after status.json is written). One untimed warm-up run comes
first: the first run on a new install builds the cache of VLMEvalKit's registry (one `import vlmeval`, ~15 s, once
per VLMEvalKit version; registering a task through the API builds it too).
(a) ends at the run's `running` event (written just before the subprocess is spawned; DB clock, same host).
(b) starts at the mtime of VLMEvalKit's status.json (its last write) and ends when a leaderboard poll (every 50 ms)
first shows the run. Target: p95 <= 3 s each.

Usage: .venv/bin/python bench/latency_bench.py [--runs 20] [--limit 5]
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import bench_stack, client, emit, log, pct, wait_dag
from _served import TASK, setup_served


def wait_run_over(admin: httpx.Client, engine: Any, run_id: int) -> None:
    """Until the eval run is terminal and its DAG run has ended (the pool slot and the tasks are free again)."""
    from vlmevals.db.engine import session_scope
    from vlmevals.db.models import EvalRun

    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        with session_scope(engine) as s:
            run = s.get(EvalRun, run_id)
            status, dag_run_id = run.status, run.dag_run_id
        if status not in ("queued", "running") and dag_run_id:
            state = admin.get(f"/api/v2/dags/eval_run/dagRuns/{dag_run_id}").json().get("state")
            if state in ("success", "failed"):
                return
        time.sleep(0.1)
    raise TimeoutError(f"run {run_id} did not end")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--limit", type=int, default=5)
    args = ap.parse_args()
    with bench_stack(gpu_slots=1) as stack:
        from sqlalchemy import select
        from vlmevals.db.engine import get_engine, session_scope
        from vlmevals.db.models import EvalRun, EvalRunEvent

        engine = get_engine(stack.database_url)
        server, names = setup_served(stack, args.runs + 1)
        admin, viewer = client(stack, "admin"), client(stack, "viewer")
        wait_dag(admin)
        seen: dict[int, float] = {}
        stop = threading.Event()

        def poll_board() -> None:
            while not stop.is_set():
                r = viewer.get(f"/api/evals/tasks/{TASK}/leaderboard")
                now = time.time()
                if r.status_code == 200:
                    for row in r.json()["data"]:
                        seen.setdefault(int(row["run_id"]), now)
                time.sleep(0.05)

        poller = threading.Thread(target=poll_board, daemon=True)
        poller.start()
        posted: dict[int, float] = {}
        warm = admin.post(f"/api/evals/tasks/{TASK}/runs", json={"model_name": names.pop(0), "options": {"limit": 1}})
        wait_run_over(admin, engine, int(warm.json()["id"]))
        log("warm-up run done")
        for name in names:
            t0 = time.time()
            r = admin.post(
                f"/api/evals/tasks/{TASK}/runs",
                json={"model_name": name, "options": {"limit": args.limit, "api_nproc": 1}},
            )
            r.raise_for_status()
            run_id = int(r.json()["id"])
            posted[run_id] = t0
            wait_run_over(admin, engine, run_id)
            log(f"run {run_id} done")
        deadline = time.monotonic() + 300
        while len(seen.keys() & posted.keys()) < len(posted) and time.monotonic() < deadline:
            time.sleep(0.2)
        stop.set()
        poller.join()
        server.stop()
        start_lat, visible_lat, failed = [], [], []
        with session_scope(engine) as s:
            for run_id, t0 in posted.items():
                run = s.get(EvalRun, run_id)
                if run.status != "completed":
                    failed.append({"run": run_id, "status": run.status, "error": (run.error or "")[:300]})
                    continue
                ev = s.scalar(
                    select(EvalRunEvent)
                    .where(EvalRunEvent.run_id == run_id, EvalRunEvent.status == "running")
                    .order_by(EvalRunEvent.id)
                )
                start_lat.append(ev.at.timestamp() - t0)
                status_json = Path(run.artifacts_dir) / run.model.vlmeval_model / "status.json"
                if run_id in seen:
                    visible_lat.append(seen[run_id] - status_json.stat().st_mtime)
    emit(
        {
            "bench": "trigger_latency",
            "runs": len(posted),
            "failed": failed,
            "post_to_inference_start_s": {
                "p50": round(pct(start_lat, 50), 2),
                "p95": round(pct(start_lat, 95), 2),
                "max": round(max(start_lat, default=float("nan")), 2),
                "values": [round(v, 2) for v in start_lat],
            },
            "vlmeval_end_to_leaderboard_s": {
                "p50": round(pct(visible_lat, 50), 2),
                "p95": round(pct(visible_lat, 95), 2),
                "max": round(max(visible_lat, default=float("nan")), 2),
                "values": [round(v, 2) for v in visible_lat],
            },
            "target_p95_s": 3.0,
        }
    )


if __name__ == "__main__":
    main()
