"""`vlmevals seed`: load the catalogue (tasks, models, suites, enrolments) from its YAML file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vlmevals.cli import output


def seed(path: Annotated[Path | None, typer.Option(help="catalogue YAML")] = None) -> None:
    """Load the catalogue (idempotent)."""
    from vlmevals.catalogue.choices import write_choices
    from vlmevals.catalogue.seed import SEED_FILE
    from vlmevals.catalogue.seed import seed as do_seed
    from vlmevals.db.engine import get_engine, session_scope

    with session_scope(get_engine()) as s:
        report = do_seed(s, path or SEED_FILE)
        choices = write_choices(s)
    output.console.print(
        f"seed: {len(report.created)} created, {len(report.updated)} updated, {len(report.unchanged)} unchanged"
    )
    output.console.print(f"trigger-form choices: {choices}")
