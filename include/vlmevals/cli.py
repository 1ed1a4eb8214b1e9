"""`vlmevals` command line: set up, run and stop the local stack, migrate, seed, trigger."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import httpx
import typer
from rich.console import Console

from vlmevals.cli_datasets import datasets_app
from vlmevals.cli_enrolments import enrol, enrolments, unenrol
from vlmevals.cli_exports import exports_app
from vlmevals.core.constants import EVAL_RUN_DAG_ID
from vlmevals.core.settings import get_settings
from vlmevals.devtools.stack import USERS, Stack, wait_for_dag
from vlmevals.devtools.stack_settings import CPU_SLOTS
from vlmevals.gpu.detect import nvidia_smi
from vlmevals.toolkit import registry

if TYPE_CHECKING:
    from vlmevals.db.models import EvalRun

app = typer.Typer(no_args_is_help=True, help="VLM evaluation service (VLMEvalKit on Airflow).")
db_app = typer.Typer(help="Our tables' migrations (Alembic, in sql/).")
app.add_typer(db_app, name="db")
app.add_typer(datasets_app, name="datasets")
app.add_typer(exports_app, name="exports")
for _command in (enrol, unenrol, enrolments):
    app.command()(_command)
console = Console(soft_wrap=True)
"""soft_wrap: rich never breaks a line, so every URL and path stays whole in narrow terminals and pipes."""

DEMO_TASK = "demo-shapes-mcq"
DEMO_MODEL = "demo-tiny-idefics3"


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    from vlmevals.db.engine import upgrade

    upgrade(revision=revision)
    console.print(f"migrated to {revision}")


@db_app.command("downgrade")
def db_downgrade(revision: str = "base") -> None:
    from vlmevals.db.engine import downgrade

    downgrade(revision=revision)
    console.print(f"downgraded to {revision}")


@app.command()
def seed(path: Annotated[Path | None, typer.Option(help="catalogue YAML")] = None) -> None:
    """Load the catalogue (idempotent)."""
    from vlmevals.catalogue.choices import write_choices
    from vlmevals.catalogue.seed import SEED_FILE
    from vlmevals.catalogue.seed import seed as do_seed
    from vlmevals.db.engine import session_scope

    with session_scope() as s:
        report = do_seed(s, path or SEED_FILE)
        choices = write_choices(s)
    console.print(
        f"seed: {len(report.created)} created, {len(report.updated)} updated, {len(report.unchanged)} unchanged"
    )
    console.print(f"trigger-form choices: {choices}")


@app.command("demo-assets")
def demo_assets() -> None:
    """Build the demo benchmark TSVs and the tiny demo model (deterministic, offline)."""
    from vlmevals.devtools.demo.benchmark import DEMO_BENCHMARKS, write_benchmark
    from vlmevals.devtools.demo.model import build_demo_model

    settings = get_settings()
    for name in DEMO_BENCHMARKS:
        console.print(f"benchmark {write_benchmark(name, settings.lmu_data)}")
    console.print(f"model {build_demo_model(settings.models_dir / DEMO_MODEL)}")


def _gpu_slots(stack: Stack) -> int:
    if stack.settings.gpu_slots:
        return stack.settings.gpu_slots
    return len(nvidia_smi() or ()) or CPU_SLOTS


def bring_up(stack: Stack) -> None:
    """Database, migrations, catalogue, demo assets, pool, Airflow components: everything but a run."""
    with console.status("starting PostgreSQL"):
        stack.start_database()
    console.print(f"[green]✓[/] PostgreSQL at {stack.database_url.split('@')[-1]}")
    with console.status("migrating Airflow's metadata DB and our tables"):
        stack.migrate()
    console.print("[green]✓[/] migrations")
    env_file = stack.write_env_file()  # before the export below, so it still tells derived values from yours
    os.environ.update({k: v for k, v in stack.shell_env().items() if k != "PATH"})
    get_settings.cache_clear()
    console.print(f"[green]✓[/] outputs in {os.environ['VLMEVAL_OUTPUTS']}")
    seed()
    with console.status("building demo assets"):
        demo_assets()
    slots = _gpu_slots(stack)
    stack.airflow("pools", "set", "gpu", str(slots), "GPU slots for inference (one per GPU)")
    console.print(f"[green]✓[/] pool gpu = {slots} slot(s); shell environment in {env_file}")
    warming = registry.warm_in_background(get_settings())  # alongside Airflow's start, not in a request
    with console.status("starting Airflow (api-server, scheduler, dag-processor, triggerer)"):
        stack.start_components()
        stack.wait_healthy()
        warming.join()
    console.print(f"[green]✓[/] Airflow at {stack.api_url}; VLMEvalKit's registry cached")


@app.command()
def up() -> None:
    """Start the local stack (PostgreSQL + Airflow) and leave it running."""
    stack = Stack()
    bring_up(stack)
    _print_access(stack)


def _print_access(stack: Stack) -> None:
    console.print(
        f"Airflow UI: [bold]{stack.api_url}[/]  login admin/{USERS['admin']} "
        f"(also op/{USERS['op']}, viewer/{USERS['viewer']})"
    )
    console.print(f"Shell env for the airflow CLI: source {stack.home / 'env.sh'}")
    console.print("Stop everything: [bold]./scripts/stop.sh[/]")


@app.command()
def trigger(task: str = DEMO_TASK, model: str = DEMO_MODEL, wait: bool = True, timeout_s: float = 1800) -> None:
    """Trigger an eval_run through Airflow's REST API and (by default) wait for its result."""
    stack = Stack()
    client = httpx.Client(base_url=stack.api_url, timeout=30, headers={"Authorization": f"Bearer {stack.token()}"})
    wait_for_dag(client, EVAL_RUN_DAG_ID)
    r = client.post(
        "/api/v2/dags/eval_run/dagRuns",
        json={"logical_date": None, "conf": {"task": task, "model": model, "triggered_by": "rest"}},
    )
    if r.status_code >= 300:
        raise typer.Exit(f"trigger failed: HTTP {r.status_code} {r.text}")  # type: ignore[arg-type]
    dag_run_id = r.json()["dag_run_id"]
    console.print(f"triggered eval_run, DAG run [bold]{dag_run_id}[/]")
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
    with console.status("waiting for the evaluation") as status:
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
            if dag_state in ("success", "failed") and (run is None or run.status not in ("queued", "running")):
                break
            time.sleep(1)
    if run is None:
        console.print(f"[red]no eval run recorded[/] (DAG run {dag_state}); see the Airflow UI")
        raise typer.Exit(1)
    print_result(run, label, f"{stack.api_url}/dags/{EVAL_RUN_DAG_ID}/runs/{dag_run_id}")
    if run.status != "completed":
        raise typer.Exit(1)


def print_result(run: EvalRun, label: str, airflow_url: str) -> None:
    """The outcome of one eval run: status, score, error, artifacts folder and the Airflow run's URL."""
    colour = "green" if run.status == "completed" else "red"
    console.print(f"[{colour}]eval run {run.id}: {run.status}[/]")
    if run.primary_metric is not None:
        console.print(f"score ({label}): [bold]{run.primary_metric:.4f}[/]")
    if run.error:
        console.print(f"error: {run.error}")
    console.print(f"artifacts: {run.artifacts_dir}")
    console.print(f"Airflow run: {airflow_url}")


@app.command()
def demo() -> None:
    """Set everything up, train the demo model's checkpoints, evaluate them on the demo suite, print the boards."""
    from vlmevals.devtools.demo.flow import train_and_evaluate

    stack = Stack()
    started = time.monotonic()
    bring_up(stack)
    ok = train_and_evaluate(stack, console)
    console.print(f"demo finished in {time.monotonic() - started:.0f} s; the stack keeps running.")
    _print_access(stack)
    if not ok:
        raise typer.Exit(1)


@app.command()
def down() -> None:
    """Stop the Airflow components and our PostgreSQL cleanly."""
    stopped = Stack().stop()
    console.print(f"stopped: {', '.join(stopped) or 'nothing was running'}")


def _fail_clearly(err: Exception) -> typer.Exit:
    console.print(f"[red]error:[/] {err}")
    return typer.Exit(1)


@app.command("sync-outputs")
def sync_outputs(
    folder: Annotated[Path | None, typer.Argument(help="VLMEvalKit work dir (default: VLMEVAL_OUTPUTS)")] = None,
    create_unknown: Annotated[bool, typer.Option(help="register unknown models/tasks instead of reporting")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the full report as JSON")] = False,
) -> None:
    """Backfill: record the finished and failed results already in a VLMEvalKit work dir (idempotent)."""
    import json

    from vlmevals.backfill import sync_outputs as do_sync
    from vlmevals.core.errors import EvalsError

    try:
        report = do_sync(folder or get_settings().outputs_dir, create_unknown=create_unknown)
    except EvalsError as err:
        raise _fail_clearly(err) from err
    if as_json:
        console.print_json(json.dumps(report.as_dict()))
        return
    console.print(report.summary_line())
    for kind, problems in (
        ("unknown", report.unknown),
        ("malformed", report.malformed),
        ("incomplete", report.incomplete),
        ("not scored", report.not_scored),
    ):
        for p in problems:
            console.print(f"  [yellow]{kind}[/] {p.path}: {p.reason}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
