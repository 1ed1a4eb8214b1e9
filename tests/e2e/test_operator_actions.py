"""Airflow's own "Mark failed" / "Mark success", on an eval_run DAG run and on its inference task, while
VLMEvalKit infers, on the live stack (the REST calls the UI buttons make). Afterwards Airflow and our tables
agree: Mark failed → DAG run failed, eval run failed; Mark success → the unfinished run is cancelled (never
`completed` without metrics); the error names the user (Airflow's audit log); VLMEvalKit's process group is
gone and the run's GPU lease is freed. Then the stack stopped (`vlmevals down`'s stop) and, separately, the
scheduler or the api-server SIGKILLed mid-inference and started again: Airflow's orphan reset at scheduler
start-up retries inference, which resumes from VLMEvalKit's partial answers, and the run completes. The scheduler
is killed inside its critical section (held there by tests/e2e/critical_section.py), where a kill leaves its
transaction open with the pool locks while its LocalExecutor workers still hold its socket. All cases share one
stack, whose scheduler this module restarts with a fake GPU (EVALS_GPUS=0) so every inference takes a real
lease, and one slow served model."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from vlmevals.core.constants import SYNC_OUTPUTS_DAG_ID
from vlmevals.core.settings import get_settings
from vlmevals.db.engine import session_scope
from vlmevals.db.models import EvalRun, GpuLease, Model
from vlmevals.devtools.stack import COMPONENTS, wait_for_dag

from tests.doubles.openai_server import ServerHandle, serve
from tests.e2e.critical_section import scheduler_gate
from tests.e2e.plugin_helpers import client, wait_dag, wait_dag_run_over

pytestmark = pytest.mark.e2e
MCQ = "demo-shapes-mcq"
MODEL = "served-ops"


GPU_ENV = {"EVALS_GPUS": "0"}
"""The scheduler's (hence its task workers') environment in this module: one fake GPU, so inference leases it."""


def _start(stack) -> None:
    for name in COMPONENTS:
        stack.start_component(name, extra_env=GPU_ENV if name == "scheduler" else None)
    stack.wait_healthy()


@pytest.fixture(scope="module")
def leasing(live_stack) -> Iterator[None]:
    """The shared stack with its scheduler restarted on a fake GPU (whichever module started the stack), and
    restarted as it was afterwards."""
    _start(live_stack)
    assert b"EVALS_GPUS=0" in Path(f"/proc/{live_stack.pid('scheduler')}/environ").read_bytes()
    yield
    live_stack.start_components()
    live_stack.wait_healthy()


@pytest.fixture(scope="module")
def server(demo_assets) -> Iterator[ServerHandle]:
    tsv = get_settings().lmu_data / "DEMO_SHAPES_MCQ.tsv"
    with serve(mode="oracle", tsv=str(tsv), delay_s=0.5) as srv:  # slow answers: the action lands mid-inference
        yield srv


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


def _add_model(engine, server: ServerHandle) -> None:
    with session_scope(engine) as s:
        s.add(Model(name=MODEL, display_name=MODEL, vlmeval_model=MODEL, gpus=1, endpoint_base_url=server.base_url))


def _trigger(admin: httpx.Client, **conf: object) -> str:
    r = admin.post(
        "/api/v2/dags/eval_run/dagRuns",
        json={"logical_date": None, "conf": {"task": MCQ, "model": MODEL, "api_nproc": 1, **conf}},
    )
    assert r.status_code == 200, r.text
    return str(r.json()["dag_run_id"])


def _start_inferring(admin: httpx.Client, engine) -> tuple[str, int, int]:
    dag_run_id = _trigger(admin)

    def inferring() -> tuple[int, int] | None:
        with session_scope(engine) as s:
            run = s.scalar(select(EvalRun).where(EvalRun.dag_run_id == dag_run_id))
            if run is None or run.status != "running" or not run.artifacts_dir:
                return None
            pidfile = Path(run.artifacts_dir) / "worker.pid"
            return (run.id, int(pidfile.read_text())) if pidfile.exists() and run.progress_done >= 1 else None

    run_id, pgid = _wait("VLMEvalKit to answer its first samples", inferring)
    return dag_run_id, run_id, pgid


def _final(engine, run_id: int, timeout_s: float = 240) -> EvalRun:
    return _wait(
        "a final eval run", lambda: (x := _row(engine, run_id)).status not in ("queued", "running") and x, timeout_s
    )


@pytest.mark.parametrize(
    "target, state, expected",
    [
        ("dag_run", "failed", "failed"),
        ("dag_run", "success", "cancelled"),
        ("inference", "failed", "failed"),
        ("inference", "success", "failed"),
    ],
)
def test_mark_state_in_airflow_leaves_tables_agreeing(
    leasing, live_stack, seeded, server: ServerHandle, target: str, state: str, expected: str
) -> None:
    _add_model(seeded, server)
    admin = client(live_stack, "admin")
    wait_dag(admin)
    dag_run_id, run_id, pgid = _start_inferring(admin, seeded)
    held_before = _held(seeded, run_id)
    assert held_before == 1, "inference holds the model's GPU lease"
    base = f"/api/v2/dags/eval_run/dagRuns/{dag_run_id}"
    acted = time.monotonic()
    if target == "dag_run":
        r = admin.patch(base, json={"state": state})
    else:
        r = admin.patch(f"{base}/taskInstances/inference", json={"new_state": state})
    assert r.status_code == 200, r.text
    dag_state = wait_dag_run_over(admin, dag_run_id, timeout_s=240)
    run = _final(seeded, run_id)
    seconds = time.monotonic() - acted
    assert dag_state == ("success" if expected == "cancelled" else "failed"), (dag_state, run.status, run.error)
    assert run.status == expected and run.primary_metric is None, (run.status, run.error)
    if (target, state) == ("inference", "success"):
        # Airflow goes on to scoring, which finds no predictions: a failure naming the missing file
        assert run.error and "scoring" in run.error and ".xlsx" in run.error, run.error
    else:
        where = "its inference task" if target == "inference" else "the DAG run"
        assert f"{where} was marked {state} in Airflow by admin at " in (run.error or ""), run.error
    assert _wait("VLMEvalKit's process group to end", lambda: _group_gone(pgid), 60)
    held_after = _held(seeded, run_id)
    assert held_after == 0, "the GPU lease is released"
    print(
        f"\nmark {state} on {target}: eval run {expected}, DAG run {dag_state} {seconds:.1f} s after the PATCH; "
        f"progress {run.progress_done}/{run.progress_total}; leases {held_before} -> {held_after}; "
        f"error {run.error!r}; load {os.getloadavg()[0]:.2f}"
    )


def _kill(stack, name: str) -> None:
    """SIGKILL one component (the OOM killer's way: its children are not signalled)."""
    pid = stack.pid(name)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)  # the stack helper started it from this process: reap it, or it stays a zombie
    _wait(f"{name} to die", lambda: stack.pid(name) is None, 30)


def _kill_scheduler_in_critical_section(stack, admin: httpx.Client, tmp: Path) -> str:
    """A backfill DAG run's task reaches the critical section, which the gate holds; the scheduler is killed there.
    Its backend lives on, idle in its transaction with the pool locks (its workers hold the socket): the state
    that stalled every restarted scheduler. Restarted as `vlmevals up` does, that transaction ends. Returns the
    backfill's DAG run id."""
    wait_for_dag(admin, SYNC_OUTPUTS_DAG_ID, timeout_s=120)
    with scheduler_gate() as gate:
        r = admin.post(
            f"/api/v2/dags/{SYNC_OUTPUTS_DAG_ID}/dagRuns", json={"logical_date": None, "conf": {"folder": str(tmp)}}
        )
        assert r.status_code == 200, r.text
        backend = gate.backend_inside()
        _kill(stack, "scheduler")
        gate.open()

        deadline = time.monotonic() + 30  # the backend finishes the statement the gate held, then sits idle
        while (state := gate.session(backend)) is not None and state[0] == "active" and time.monotonic() < deadline:
            time.sleep(0.2)
        assert state == ("idle in transaction", True), f"no orphaned transaction holding the pool locks: {state}"
        _start(stack)  # as `vlmevals up`: what survives of the killed scheduler is ended first
        assert _wait("the orphaned transaction to end", lambda: gate.session(backend) is None, 60)
    return str(r.json()["dag_run_id"])


@pytest.mark.parametrize("how", ["stop", "scheduler", "api-server"])
def test_stack_restart_mid_inference_finishes_the_run(
    leasing, live_stack, seeded, server: ServerHandle, how: str, tmp_path: Path
) -> None:
    _add_model(seeded, server)
    admin = client(live_stack, "admin")
    wait_dag(admin)
    dag_run_id, run_id, pgid = _start_inferring(admin, seeded)
    _wait("a first save of partial answers", lambda: _row(seeded, run_id).progress_done >= 10, 120)
    held_before = _held(seeded, run_id)
    answered_before = server.stats()["answered"]
    acted = time.monotonic()
    backfill = None
    if how == "stop":
        live_stack.stop(database=False)
    elif how == "scheduler":
        backfill = _kill_scheduler_in_critical_section(live_stack, admin, tmp_path)
    else:
        _kill(live_stack, how)
    _start(live_stack)
    restarted_s = time.monotonic() - acted
    if how == "stop":
        assert _group_gone(pgid), "no VLMEvalKit process outlives `vlmevals down`"
    server.reset_stats()
    admin = client(live_stack, "admin")  # a new api-server: a new token is not needed, but the old socket is gone
    run = _final(seeded, run_id, 600)
    seconds = time.monotonic() - acted
    dag_state = wait_dag_run_over(admin, dag_run_id, timeout_s=120)
    again = server.stats()["answered"]
    assert run.status == "completed", (run.status, run.error)
    assert dag_state == "success"
    assert again < run.progress_total, "the retry resumed from the partial answers"
    assert _group_gone(pgid) and _held(seeded, run_id) == 0
    if backfill is not None:  # the task queued inside the killed critical section is scheduled again too
        url = f"/api/v2/dags/{SYNC_OUTPUTS_DAG_ID}/dagRuns/{backfill}"
        over = _wait(
            "the backfill DAG run", lambda: (x := admin.get(url).json()["state"]) in ("success", "failed") and x
        )
        assert over == "success"
    print(
        f"\n{how}: back in {restarted_s:.1f} s; eval run {run.status} {seconds:.1f} s after the action "
        f"(attempts {run.attempts}); answered before {answered_before}, re-asked after {again} of "
        f"{run.progress_total}; leases {held_before} -> {_held(seeded, run_id)}; load {os.getloadavg()[0]:.2f}"
    )
