"""`vlmevals` command line: one typer app assembled from its command groups, one module per group.

A group module loads only typer, rich and `vlmevals.core` when the app is built; each command imports what it
needs when it runs. So a production command (`db`, `seed`, `datasets`, `enrol…`, `exports`, `sync-outputs`) never loads
the local stack (`vlmevals.devtools`) or VLMEvalKit: only the local-stack commands in `stack` reach them.
"""

from __future__ import annotations

import sys
import warnings

import typer

from vlmevals.cli import backfill, catalogue, datasets, db, enrolments, exports, output, stack

app = typer.Typer(no_args_is_help=True, help="VLM evaluation service (VLMEvalKit on Airflow).")
app.add_typer(db.db_app, name="db")
app.add_typer(datasets.datasets_app, name="datasets")
app.add_typer(exports.exports_app, name="exports")
for _name, _command in (
    ("enrol", enrolments.enrol),
    ("unenrol", enrolments.unenrol),
    ("enrolments", enrolments.enrolments),
    ("seed", catalogue.seed),
    ("demo-assets", stack.demo_assets),
    ("up", stack.up),
    ("trigger", stack.trigger),
    ("demo", stack.demo),
    ("down", stack.down),
    ("sync-outputs", backfill.sync_outputs),
):
    app.command(_name)(_command)


def main() -> None:
    """The `vlmevals` entry point: a missing prerequisite of the local set-up is one line, not a traceback."""
    # platformdirs warns at Airflow's import on machines without a login session (containers, CI, cron): noise
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
    try:
        app()
    except Exception as err:
        # SetupError lives in the local stack's module, loaded only by the commands that can raise it
        localpg = sys.modules.get("vlmevals.devtools.localpg")
        if localpg is None or not isinstance(err, localpg.SetupError):
            raise
        output.console.print(f"[red]error:[/] {err}")
        raise SystemExit(1) from None
