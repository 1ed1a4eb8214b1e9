"""`vlmevals exports …`: the experiment-tracker outbox: list, deliver now, re-queue failed rows, queue history.

A typer sub-app of its own, added to the app as `exports` in `vlmevals.cli`; each command imports the database
and the exporters when it runs.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

exports_app = typer.Typer(no_args_is_help=True, help="Results in experiment trackers (MLflow, TensorBoard, W&B).")
console = Console(soft_wrap=True)


@exports_app.command("list")
def list_cmd(
    state: Annotated[str | None, typer.Option(help="pending, delivered or failed")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
) -> None:
    """Outbox rows, newest first, with the last error of each."""
    from vlmevals.db.engine import get_engine, session_scope
    from vlmevals.exports.outbox import list_exports

    with session_scope(get_engine()) as s:
        got = list_exports(s, state=state, limit=limit)
    table = Table("id", "run", "exporter", "state", "attempts", "tracker / last error")
    for r in got.data:
        table.add_row(
            str(r.id), str(r.run_id), r.exporter, r.state, str(r.attempts), r.tracker_ref or r.last_error or ""
        )
    console.print(table)
    console.print(", ".join(f"{k}: {v}" for k, v in got.states.items()))


@exports_app.command("retry")
def retry(
    run_id: Annotated[int | None, typer.Option("--run-id", help="only this eval run")] = None,
    exporter: Annotated[str | None, typer.Option(help="only this exporter (mlflow, tensorboard, wandb)")] = None,
) -> None:
    """Put failed rows back in the queue (attempts reset; all of them without a filter); the deliver_exports DAG
    sends them within a minute."""
    from vlmevals.db.engine import get_engine, session_scope
    from vlmevals.exports.outbox import retry_failed

    with session_scope(get_engine()) as s:
        n = retry_failed(s, run_id=run_id, exporter=exporter)
    console.print(f"re-queued {n} failed export(s)")


@exports_app.command("resync")
def resync(
    exporter: Annotated[str, typer.Option(help="the exporter to send again (mlflow, tensorboard, wandb)")],
    run_id: Annotated[int | None, typer.Option("--run-id", help="only this eval run")] = None,
    since: Annotated[
        dt.datetime | None, typer.Option(formats=["%Y-%m-%d"], help="only runs finished on or after this day (UTC)")
    ] = None,
) -> None:
    """Send delivered (and failed) runs to one tracker again, e.g. after it lost its data: rows back to pending;
    the tracker runs are found again and updated, not duplicated."""
    from vlmevals.db.engine import get_engine, session_scope
    from vlmevals.exports.outbox import resync_exports

    name = exporter.strip().lower()
    try:
        with session_scope(get_engine()) as s:
            n = resync_exports(s, exporter=name, run_id=run_id, since=since.replace(tzinfo=dt.UTC) if since else None)
    except ValueError as e:
        console.print(f"[red]error:[/] {e}")
        raise typer.Exit(1) from e
    console.print(f"re-queued {n} export(s) for {name}")


@exports_app.command("deliver")
def deliver() -> None:
    """Send every due row now (what one deliver_exports DAG run does)."""
    from vlmevals.db.engine import get_engine
    from vlmevals.exports.delivery import deliver_pending

    console.print(deliver_pending(get_engine()).as_dict())


@exports_app.command("backfill")
def backfill(
    since: Annotated[dt.datetime, typer.Option(formats=["%Y-%m-%d"], help="runs finished on or after this day (UTC)")],
    exporter: Annotated[str | None, typer.Option(help="only this exporter; default: those in EVALS_EXPORTERS")] = None,
) -> None:
    """Queue completed and failed runs finished since a day that this exporter has not had yet (once: a second
    call adds nothing); the deliver_exports DAG sends them."""
    from vlmevals.core.settings import get_settings
    from vlmevals.db.engine import get_engine, session_scope
    from vlmevals.exports.outbox import backfill_exports

    names = [exporter.strip().lower()] if exporter else get_settings().exporter_names
    if not names:
        console.print("[red]error:[/] no exporter: set EVALS_EXPORTERS (mlflow, tensorboard, wandb) or pass --exporter")
        raise typer.Exit(1)
    try:
        with session_scope(get_engine()) as s:
            n = backfill_exports(s, since=since.replace(tzinfo=dt.UTC), exporters=names)
    except ValueError as e:
        console.print(f"[red]error:[/] {e}")
        raise typer.Exit(1) from e
    console.print(f"queued {n} export(s) of runs finished since {since:%Y-%m-%d} for {', '.join(names)}")
