"""`vlmevals sync-outputs`: record the results already in a VLMEvalKit work dir (the backfill)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vlmevals.cli import output
from vlmevals.core.settings import get_settings


def sync_outputs(
    folder: Annotated[Path | None, typer.Argument(help="VLMEvalKit work dir (default: VLMEVAL_OUTPUTS)")] = None,
    create_unknown: Annotated[bool, typer.Option(help="register unknown models/tasks instead of reporting")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the full report as JSON")] = False,
) -> None:
    """Backfill: record the finished and failed results already in a VLMEvalKit work dir (idempotent)."""
    import json

    from vlmevals.backfill import sync_outputs as do_sync
    from vlmevals.core.errors import EvalsError
    from vlmevals.db.engine import get_engine

    try:
        report = do_sync(folder or get_settings().outputs_dir, engine=get_engine(), create_unknown=create_unknown)
    except EvalsError as err:
        raise output.fail(err) from err
    if as_json:
        output.console.print_json(json.dumps(report.as_dict()))
        return
    output.console.print(report.summary_line())
    for kind, problems in (
        ("unknown", report.unknown),
        ("malformed", report.malformed),
        ("incomplete", report.incomplete),
        ("not scored", report.not_scored),
    ):
        for p in problems:
            output.console.print(f"  [yellow]{kind}[/] {p.path}: {p.reason}")
