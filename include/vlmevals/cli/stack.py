"""`vlmevals up / down / trigger / demo / demo-assets`: the local stack, a developer's tools.

Every command here imports the local stack (`vlmevals.devtools`) inside itself, so building the app, or running a
production command, never loads it.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

import typer

from vlmevals.cli import output
from vlmevals.cli.catalogue import seed
from vlmevals.core.constants import EVAL_RUN_DAG_ID
from vlmevals.core.settings import get_settings
from vlmevals.core.vocabulary import ACTIVE_STATUSES, RunStatus, TriggeredBy

if TYPE_CHECKING:
    import httpx

    from vlmevals.db.models import EvalRun
    from vlmevals.devtools.stack import Stack

DEMO_TASK = "demo-shapes-mcq"
DEMO_MODEL = "demo-tiny-idefics3"


def demo_assets() -> None:
    """Build the demo benchmark TSVs and the tiny demo model (deterministic, offline)."""
    from vlmevals.devtools.demo.benchmark import DEMO_BENCHMARKS, write_benchmark
    from vlmevals.devtools.demo.model import build_demo_model

    settings = get_settings()
    for name in DEMO_BENCHMARKS:
        output.console.print(f"benchmark {write_benchmark(name, settings.lmu_data)}")
    output.console.print(f"model {build_demo_model(settings.models_dir / DEMO_MODEL)}")


def _gpu_slots(stack: Stack) -> int:
    from vlmevals.devtools.stack_settings import CPU_SLOTS
    from vlmevals.gpu.detect import nvidia_smi

    if stack.settings.gpu_slots:
        return stack.settings.gpu_slots
    return len(nvidia_smi() or ()) or CPU_SLOTS


def bring_up(stack: Stack) -> None:
    """Database, migrations, catalogue, demo assets, pool, Airflow components: everything but a run."""
    from vlmevals.vlmevalkit import registry

    with output.console.status("starting PostgreSQL"):
        stack.start_database()
    output.console.print(f"[green]✓[/] PostgreSQL at {stack.database_url.split('@')[-1]}")
    with output.console.status("migrating Airflow's metadata DB and our tables"):
        stack.migrate()
    output.console.print("[green]✓[/] migrations")
    env_file = stack.write_env_file()  # before the export below, so it still tells derived values from yours
    os.environ.update({k: v for k, v in stack.shell_env().items() if k != "PATH"})
    get_settings.cache_clear()
    output.console.print(f"[green]✓[/] outputs in {os.environ['VLMEVAL_OUTPUTS']}")
    seed()
    _end_engines("the stack started again")
    with output.console.status("building demo assets"):
        demo_assets()
    slots = _gpu_slots(stack)
    stack.airflow("pools", "set", "gpu", str(slots), "GPU slots for inference (one per GPU)")
    output.console.print(f"[green]✓[/] pool gpu = {slots} slot(s); shell environment in {env_file}")
    warming = registry.warm_in_background(get_settings())  # alongside Airflow's start, not in a request
    with output.console.status("starting Airflow (api-server, scheduler, dag-processor, triggerer)"):
        stack.start_components()
        stack.wait_healthy()
        warming.join()
    output.console.print(f"[green]✓[/] Airflow at {stack.api_url}; VLMEvalKit's registry cached")


def _end_engines(why: str) -> None:
    """No model server of this machine outlives its stack: their rows are marked failed, their engines ended."""
    from vlmevals.db.engine import get_engine
    from vlmevals.pipeline.serve import reap_stale_servers

    ended = reap_stale_servers(get_engine(), get_settings(), this_node_restarting=True, why=why)
    if ended:
        output.console.print(f"[yellow]![/] model servers {', '.join(map(str, ended))} marked failed: {why}")


def up() -> None:
    """Start the local stack (PostgreSQL + Airflow) and leave it running."""
    from vlmevals.devtools.stack import Stack

    stack = Stack()
    bring_up(stack)
    _print_access(stack)


def _print_access(stack: Stack) -> None:
    from vlmevals.devtools.stack import FAB_USERS, USERS

    names = FAB_USERS if stack.settings.auth_manager == "fab" else USERS  # passwords are the names
    others = ", ".join(f"{name}/{name}" for name in names if name != "admin")
    output.console.print(
        f"Airflow UI: [bold]{stack.api_url}[/]  login admin/admin (also {others}; {stack.settings.auth_manager} auth)"
    )
    output.console.print(f"Shell env for the airflow CLI: source {stack.home / 'env.sh'}")
    output.console.print("Stop everything: [bold]./scripts/stop.sh[/]")


def trigger(task: str = DEMO_TASK, model: str = DEMO_MODEL, wait: bool = True, timeout_s: float = 1800) -> None:
    """Trigger an eval_run through Airflow's REST API and (by default) wait for its result."""
    import httpx

    from vlmevals.devtools.stack import Stack, wait_for_dag

    stack = Stack()
    client = httpx.Client(base_url=stack.api_url, timeout=30, headers={"Authorization": f"Bearer {stack.token()}"})
    wait_for_dag(client, EVAL_RUN_DAG_ID)
    r = client.post(
        "/api/v2/dags/eval_run/dagRuns",
        json={"logical_date": None, "conf": {"task": task, "model": model, "triggered_by": TriggeredBy.AIRFLOW_REST}},
    )
    if r.status_code >= 300:
        raise typer.Exit(f"trigger failed: HTTP {r.status_code} {r.text}")  # type: ignore[arg-type]
    dag_run_id = r.json()["dag_run_id"]
    output.console.print(f"triggered eval_run, DAG run [bold]{dag_run_id}[/]")
    if wait:
        _wait_and_report(stack, client, dag_run_id, timeout_s)


def _wait_and_report(stack: Stack, client: httpx.Client, dag_run_id: str, timeout_s: float) -> None:
    from sqlalchemy import select

    from vlmevals.db.engine import get_engine, session_scope
    from vlmevals.db.models import EvalRun

    engine = get_engine(stack.database_url)
    deadline = time.monotonic() + timeout_s
    dag_state = "queued"
    run: EvalRun | None = None
    with output.console.status("waiting for the evaluation") as status:
        while time.monotonic() < deadline:
            dag_state = client.get(f"/api/v2/dags/eval_run/dagRuns/{dag_run_id}").json().get("state", "?")
            with session_scope(engine) as s:
                run = s.scalar(select(EvalRun).where(EvalRun.dag_run_id == dag_run_id))
                if run is not None:
                    label = f"{run.task.name} {run.task.primary_metric_key}, {run.model.name}"
                    status.update(
                        f"eval run {run.id}: {run.status} {run.progress_done}/{run.progress_total or '?'}"
                        f" samples (DAG run {dag_state})"
                    )
            if dag_state in ("success", "failed") and (run is None or run.status not in ACTIVE_STATUSES):
                break
            time.sleep(1)
    if run is None:
        output.console.print(f"[red]no eval run recorded[/] (DAG run {dag_state}); see the Airflow UI")
        raise typer.Exit(1)
    print_result(run, label, f"{stack.api_url}/dags/{EVAL_RUN_DAG_ID}/runs/{dag_run_id}")
    if run.status != RunStatus.COMPLETED:
        raise typer.Exit(1)


def print_result(run: EvalRun, label: str, airflow_url: str) -> None:
    """The outcome of one eval run: status, score, error, artifacts folder and the Airflow run's URL."""
    colour = "green" if run.status == RunStatus.COMPLETED else "red"
    output.console.print(f"[{colour}]eval run {run.id}: {run.status}[/]")
    if run.primary_metric is not None:
        output.console.print(f"score ({label}): [bold]{run.primary_metric:.4f}[/]")
    if run.error:
        output.console.print(f"error: {run.error}")
    output.console.print(f"artifacts: {run.artifacts_dir}")
    output.console.print(f"Airflow run: {airflow_url}")


def demo() -> None:
    """Set everything up, train the demo model's checkpoints, evaluate them on the demo suite, print the boards."""
    from vlmevals.devtools.demo.flow import train_and_evaluate
    from vlmevals.devtools.stack import Stack

    stack = Stack()
    started = time.monotonic()
    bring_up(stack)
    ok = train_and_evaluate(stack, output.console)
    output.console.print(f"demo finished in {time.monotonic() - started:.0f} s; the stack keeps running.")
    _print_access(stack)
    if not ok:
        raise typer.Exit(1)


def down() -> None:
    """Stop the Airflow components and our PostgreSQL cleanly."""
    from vlmevals.devtools.stack import Stack

    stack = Stack()
    if not stack.own_postgres or stack.pg.running():
        os.environ.update({k: v for k, v in stack.shell_env().items() if k != "PATH"})
        get_settings.cache_clear()
        try:
            _end_engines("the stack stopped")
        except Exception as err:  # a half-stopped stack must still stop; engines die with their task anyway
            output.console.print(f"[yellow]![/] could not check model servers: {err}")
    stopped = stack.stop()
    output.console.print(f"stopped: {', '.join(stopped) or 'nothing was running'}")
