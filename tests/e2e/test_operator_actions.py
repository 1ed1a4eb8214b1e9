"""Airflow's own "Mark failed" / "Mark success", on an eval_run DAG run and on its inference task, while
VLMEvalKit infers, on the live stack (the REST calls the UI buttons make). Afterwards Airflow and our tables
agree: Mark failed → DAG run failed, eval run failed; Mark success → the unfinished run is cancelled (never
`completed` without metrics); the error names the user (Airflow's audit log); VLMEvalKit's process group is
gone and the run's GPU lease is freed. Then the stack stopped (`vlmevals down`'s stop) and, separately, the
scheduler or the api-server SIGKILLed mid-inference and started again: Airflow's orphan reset at scheduler
start-up retries inference, which resumes from VLMEvalKit's partial answers, and the run completes. All cases
share one stack and one slow served model."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from vlmevals.core.settings import get_settings
from vlmevals.db.engine import session_scope
from vlmevals.db.models import EvalRun, GpuLease, Model
from vlmevals.devtools.openai_server import ServerHandle, serve

from tests.e2e.plugin_helpers import client, wait_dag, wait_dag_run_over

pytestmark = pytest.mark.e2e
MCQ = "demo-shapes-mcq"
MODEL = "served-ops"


@pytest.fixture(scope="session")
def gpu_env() -> Iterator[None]:
    """Requested before `live_stack` (session-scoped, so it is set up first): a stack started now leases a
    `gpu_leases` row per inference (a stack an earlier module started runs on CPU without leases)."""
    old = os.environ.get("EVALS_GPUS")
    os.environ["EVALS_GPUS"] = old or "0"
    yield
    if old is None:
        os.environ.pop("EVALS_GPUS", None)


@pytest.fixture(scope="module")
def server(demo_assets) -> Iterator[ServerHandle]:
    tsv = get_settings().lmu_data / "DEMO_SHAPES_MCQ.tsv"
    with serve(mode="oracle", tsv=str(tsv), delay_s=0.5) as srv:  # slow answers: the action lands mid-inference
        yield srv


def _stack_leases(stack) -> bool:
    """Whether the running scheduler (hence its task workers) was started with EVALS_GPUS."""
    pid = stack.pid("scheduler")
    return pid is not None and b"EVALS_GPUS=" in Path(f"/proc/{pid}/environ").read_bytes()


def _row(engine, run_id: int) -> EvalRun:
    with session_scope(engine) as s:
        run = s.get(EvalRun, run_id)
        assert run is not None
        s.expunge(run)
        return run


def _held(engine, run_id: int) -> int:
    with session_scope(engine) as s:
        return len(s.scalars(select(GpuLease.device).where(GpuLease.run_id == run_id)).all())


def _wait(what: str, check, timeout_s: float = 240):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if got := check():
            return got
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def _group_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


def _start_inferring(admin: httpx.Client, engine) -> tuple[str, int, int]:
    r = admin.post(
        "/api/v2/dags/eval_run/dagRuns",
        json={"logical_date": None, "conf": {"task": MCQ, "model": MODEL, "api_nproc": 1}},
    )
    assert r.status_code == 200, r.text
    dag_run_id = r.json()["dag_run_id"]

    def inferring() -> tuple[int, int] | None:
        with session_scope(engine) as s:
            run = s.scalar(select(EvalRun).where(EvalRun.dag_run_id == dag_run_id))
            if run is None or run.status != "running" or not run.artifacts_dir:
                return None
            pidfile = Path(run.artifacts_dir) / "worker.pid"
            return (run.id, int(pidfile.read_text())) if pidfile.exists() and run.progress_done >= 1 else None

    run_id, pgid = _wait("VLMEvalKit to answer its first samples", inferring)
    return dag_run_id, run_id, pgid


@pytest.mark.parametrize(
    "target, state, expected",
    [("dag_run", "failed", "failed"), ("dag_run", "success", "cancelled"), ("inference", "failed", "failed")],
)
def test_mark_state_in_airflow_leaves_tables_agreeing(
    gpu_env, live_stack, seeded, server: ServerHandle, target: str, state: str, expected: str
) -> None:
    with session_scope(seeded) as s:
        s.add(Model(name=MODEL, display_name=MODEL, vlmeval_model=MODEL, gpus=1, endpoint_base_url=server.base_url))
    admin = client(live_stack, "admin")
    wait_dag(admin)
    dag_run_id, run_id, pgid = _start_inferring(admin, seeded)
    held_before = _held(seeded, run_id)
    if _stack_leases(live_stack):
        assert held_before == 1, "inference holds the model's GPU lease"
    base = f"/api/v2/dags/eval_run/dagRuns/{dag_run_id}"
    acted = time.monotonic()
    if target == "dag_run":
        r = admin.patch(base, json={"state": state})
    else:
        r = admin.patch(f"{base}/taskInstances/inference", json={"new_state": state})
    assert r.status_code == 200, r.text
    dag_state = wait_dag_run_over(admin, dag_run_id, timeout_s=240)
    run = _wait("a final eval run", lambda: (x := _row(seeded, run_id)).status not in ("queued", "running") and x)
    seconds = time.monotonic() - acted
    assert dag_state == ("success" if expected == "cancelled" else "failed"), (dag_state, run.status, run.error)
    assert run.status == expected and run.primary_metric is None, (run.status, run.error)
    where = "its inference task" if target == "inference" else "the DAG run"
    assert f"{where} was marked {state} in Airflow by admin at " in (run.error or ""), run.error
    assert _wait("VLMEvalKit's process group to end", lambda: _group_gone(pgid), 60)
    held_after = _held(seeded, run_id)
    assert held_after == 0, "the GPU lease is released"
    print(
        f"\nmark {state} on {target}: eval run {expected}, DAG run {dag_state} {seconds:.1f} s after the PATCH; "
        f"progress {run.progress_done}/{run.progress_total}; leases {held_before} -> {held_after}; "
        f"load {os.getloadavg()[0]:.2f}"
    )


def _restart(stack, how: str) -> None:
    """`vlmevals down`'s stop of the Airflow components (our PostgreSQL is the tests' own), or a SIGKILL of one
    component (the OOM killer's way: its children are not signalled); then started again by the stack helper."""
    import signal

    if how == "stop":
        stack.stop(database=False)
    else:
        pid = stack.pid(how)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)  # the stack helper started it from this process: reap it, or it stays a zombie
        _wait(f"{how} to die", lambda: stack.pid(how) is None, 30)
    stack.start_components()
    stack.wait_healthy()


@pytest.mark.parametrize("how", ["stop", "scheduler", "api-server"])
def test_stack_restart_mid_inference_finishes_the_run(
    gpu_env, live_stack, seeded, server: ServerHandle, how: str
) -> None:
    with session_scope(seeded) as s:
        s.add(Model(name=MODEL, display_name=MODEL, vlmeval_model=MODEL, gpus=1, endpoint_base_url=server.base_url))
    admin = client(live_stack, "admin")
    wait_dag(admin)
    dag_run_id, run_id, pgid = _start_inferring(admin, seeded)
    _wait("a first save of partial answers", lambda: _row(seeded, run_id).progress_done >= 10, 120)
    held_before = _held(seeded, run_id)
    answered_before = server.stats()["answered"]
    acted = time.monotonic()
    _restart(live_stack, how)
    restarted_s = time.monotonic() - acted
    if how == "stop":
        assert _group_gone(pgid), "no VLMEvalKit process outlives `vlmevals down`"
    server.reset_stats()
    admin = client(live_stack, "admin")  # a new api-server: a new token is not needed, but the old socket is gone
    run = _wait("a final eval run", lambda: (x := _row(seeded, run_id)).status not in ("queued", "running") and x, 600)
    seconds = time.monotonic() - acted
    dag_state = wait_dag_run_over(admin, dag_run_id, timeout_s=120)
    again = server.stats()["answered"]
    assert run.status == "completed", (run.status, run.error)
    assert dag_state == "success"
    assert again < run.progress_total, "the retry resumed from the partial answers"
    assert _group_gone(pgid) and _held(seeded, run_id) == 0
    print(
        f"\n{how}: back in {restarted_s:.1f} s; eval run {run.status} {seconds:.1f} s after the action "
        f"(attempts {run.attempts}); answered before {answered_before}, re-asked after {again} of "
        f"{run.progress_total}; leases {held_before} -> {_held(seeded, run_id)}; load {os.getloadavg()[0]:.2f}"
    )
