"""Shared helpers of the bench/ scripts: a throw-away local stack, REST clients, percentiles, JSON output.

Every script starts what it needs in a temporary EVALS_HOME on free ports (its own PostgreSQL and Airflow
components on LocalExecutor, exactly what `vlmevals up` starts) and stops it at the end, so it never disturbs a
stack started by scripts/demo.sh. The demo model is cached in .local/bench-cache/models across runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".local" / "bench-cache"
if str(ROOT) not in sys.path:  # the benches stand up the test servers of tests/doubles (dev-only)
    sys.path.append(str(ROOT))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values: list[float], q: float) -> float:
    """The q-th percentile (0-100), linear interpolation; what p50/p95 mean in the figures."""
    xs = sorted(values)
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def machine() -> dict[str, Any]:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "load_1m_at_end": load}


def emit(figures: dict[str, Any]) -> None:
    """One JSON line on stdout: the script's result (everything else goes to stderr)."""
    figures["machine"] = machine()
    print(json.dumps(figures, default=str), flush=True)


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def bench_stack(gpu_slots: int = 1, parallelism: int = 4, keep: bool = False) -> Iterator[Any]:
    """A fresh local stack (PostgreSQL + Airflow on LocalExecutor) in a temp dir; yields a devtools Stack."""
    home = Path(tempfile.mkdtemp(prefix="vlmevals-bench-"))
    for k in ("DATABASE_URL", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW_HOME"):
        os.environ.pop(k, None)
    os.environ.update(
        {
            "EVALS_HOME": str(home),
            "EVALS_PG_PORT": str(free_port()),
            "EVALS_AIRFLOW_PORT": str(free_port()),
            "EVALS_GPU_SLOTS": str(gpu_slots),
            "EVALS_AIRFLOW_PARALLELISM": str(parallelism),
            "LMUData": str(home / "LMUData"),
            "VLMEVAL_OUTPUTS": str(home / "outputs"),
            "EVALS_MODELS_DIR": str(CACHE / "models"),
            "NO_PROXY": "127.0.0.1,localhost",
        }
    )
    (home / "LMUData").mkdir(parents=True)
    from rich.console import Console
    from vlmevals.cli import output
    from vlmevals.cli import stack as cli
    from vlmevals.core.settings import get_settings
    from vlmevals.devtools.stack import Stack, StackSettings

    output.console = Console(stderr=True)  # keep stdout for the JSON line
    get_settings.cache_clear()
    stack = Stack(StackSettings())
    started = time.monotonic()
    try:
        cli.bring_up(stack)
        log(f"stack up in {time.monotonic() - started:.0f} s at {stack.api_url} (home {home})")
        yield stack
    finally:
        stack.stop(database=True)
        if not keep:
            shutil.rmtree(home, ignore_errors=True)


def client(stack: Any, user: str = "admin") -> httpx.Client:
    return httpx.Client(base_url=stack.api_url, timeout=60, headers={"Authorization": f"Bearer {stack.token(user)}"})


def wait_dag(c: httpx.Client, dag_id: str = "eval_run", timeout_s: float = 180) -> None:
    from vlmevals.devtools.stack import wait_for_dag

    wait_for_dag(c, dag_id, timeout_s)


def trigger_dag(c: httpx.Client, conf: dict[str, Any]) -> str:
    r = c.post("/api/v2/dags/eval_run/dagRuns", json={"logical_date": None, "conf": conf})
    r.raise_for_status()
    return str(r.json()["dag_run_id"])


def wait_dag_run(c: httpx.Client, dag_run_id: str, timeout_s: float = 600, poll_s: float = 0.2) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        state = c.get(f"/api/v2/dags/eval_run/dagRuns/{dag_run_id}").json().get("state")
        if state in ("success", "failed"):
            return str(state)
        time.sleep(poll_s)
    raise TimeoutError(f"DAG run {dag_run_id} not finished after {timeout_s} s")


def task_durations(c: httpx.Client, dag_run_id: str) -> dict[str, float]:
    """Seconds each task instance of a DAG run ran (start to end), as Airflow recorded them."""
    tis = c.get(f"/api/v2/dags/eval_run/dagRuns/{dag_run_id}/taskInstances").json()["task_instances"]
    return {ti["task_id"]: round(ti["duration"], 2) for ti in tis if ti.get("duration") is not None}


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def _ts(value: Any) -> float | None:
    from datetime import datetime

    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp() if value else None


def timeline(c: httpx.Client, dag_run_id: str) -> dict[str, Any]:
    """Where one DAG run's wall time went: each task instance's scheduled/queued/start/end as seconds after the
    DAG run was created (Airflow's own timestamps), in start order, and the hand-off gaps between them."""
    dr = c.get(f"/api/v2/dags/eval_run/dagRuns/{dag_run_id}").json()
    t0 = _ts(dr.get("queued_at")) or _ts(dr.get("start_date")) or 0.0
    tis = c.get(f"/api/v2/dags/eval_run/dagRuns/{dag_run_id}/taskInstances").json()["task_instances"]
    ran = (ti for ti in tis if ti.get("start_date") and ti.get("state") != "skipped")  # skipped: the branch's others
    rows = sorted(ran, key=lambda ti: _ts(ti["start_date"]) or 0.0)

    def rel(v: Any) -> float | None:
        t = _ts(v)
        return round(t - t0, 2) if t is not None else None

    tasks = {
        ti["task_id"]: {
            "scheduled": rel(ti.get("scheduled_when")),
            "queued": rel(ti.get("queued_when")),
            "start": rel(ti["start_date"]),
            "end": rel(ti.get("end_date")),
        }
        for ti in rows
    }
    gaps, prev_end = {}, rel(dr.get("start_date")) or 0.0
    for tid, t in tasks.items():
        gaps[tid] = round((t["start"] or 0.0) - prev_end, 2)  # previous task's end (or run start) -> this start
        prev_end = t["end"] or prev_end
    return {
        "run_started": rel(dr.get("start_date")),
        "run_ended": rel(dr.get("end_date")),
        "tasks": tasks,
        "gap_before_s": gaps,
        "gaps_total_s": round(sum(gaps.values()) + max((rel(dr.get("end_date")) or prev_end) - prev_end, 0), 2),
    }
