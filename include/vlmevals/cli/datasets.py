"""`vlmevals datasets …`: fetch a task's dataset ahead of time and list what LMUData holds for the catalogue.

A typer sub-app of its own, added to the app as `datasets` in `vlmevals.cli`. Its console wraps like rich's default
(unlike `output.console`), as it always has: the table fits the terminal.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from vlmevals.core.errors import EvalsError
from vlmevals.core.settings import get_settings

datasets_app = typer.Typer(no_args_is_help=True, help="Benchmark datasets (TSVs in LMUData): fetch, list.")
console = Console()


@datasets_app.command("fetch")
def fetch(task: Annotated[str, typer.Argument(help="catalogue name of the task")]) -> None:
    """Download and verify the task's dataset into LMUData now (what the queue step would do)."""
    from vlmevals.catalogue.store import get_task
    from vlmevals.db.engine import get_engine, session_scope
    from vlmevals.vlmevalkit.download import prepare_dataset

    settings = get_settings()
    try:
        with session_scope(get_engine()) as s:
            t = get_task(s, task)
            data, url, md5 = t.vlmeval_data, t.dataset_url, t.dataset_md5

        def progress(done: int, total: int | None) -> None:
            console.print(f"  {done / 1e6:.1f} / {f'{total / 1e6:.1f}' if total else '?'} MB")

        info = prepare_dataset(data, settings, url=url, md5=md5, on_progress=progress)
    except EvalsError as err:
        console.print(f"[red]{err}[/red]", soft_wrap=True)
        raise typer.Exit(1) from err
    verified = "md5 verified" if info.expected_md5 else "no md5 to verify against (custom dataset)"
    console.print(
        f"{data}: {info.path} ({info.path.stat().st_size} bytes, {info.rows} rows), {verified}", soft_wrap=True
    )


def dataset_rows() -> list[dict[str, Any]]:
    """One row per dataset the catalogue uses: present, size, md5 verified, the tasks using it."""
    from sqlalchemy import select

    from vlmevals.db.engine import get_engine, session_scope
    from vlmevals.db.models import Task
    from vlmevals.vlmevalkit import registry
    from vlmevals.vlmevalkit.datasets import file_md5

    settings = get_settings()
    reg = registry.load(settings)
    used: dict[str, list[str]] = defaultdict(list)
    expected: dict[str, str | None] = {}
    with session_scope(get_engine()) as s:
        for t in s.scalars(select(Task).order_by(Task.name)):
            used[t.vlmeval_data].append(t.name)
            entry = reg.dataset(t.vlmeval_data)
            expected[t.vlmeval_data] = expected.get(t.vlmeval_data) or t.dataset_md5 or (entry.md5 if entry else None)
    rows = []
    for data in sorted(used):
        tsv = settings.lmu_data / f"{data}.tsv"
        present = tsv.exists()
        md5 = file_md5(tsv, settings.outputs_dir / ".cache" / "md5.json") if present else None
        want = expected[data]
        rows.append(
            {
                "dataset": data,
                "present": present,
                "bytes": tsv.stat().st_size if present else None,
                "md5": md5,
                "md5_verified": None if not (present and want) else md5 == want,
                "tasks": used[data],
            }
        )
    return rows


@datasets_app.command("list")
def list_datasets(as_json: Annotated[bool, typer.Option("--json", help="one JSON document")] = False) -> None:
    """Datasets the catalogue's tasks use: present in LMUData or not, size, md5 verified, used by which tasks."""
    rows = dataset_rows()
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table("dataset", "present", "size (MB)", "md5 verified", "tasks")
    for r in rows:
        verified = {None: "-", True: "yes", False: "[red]MISMATCH[/red]"}[r["md5_verified"]]
        size = f"{r['bytes'] / 1e6:.1f}" if r["bytes"] is not None else "-"
        table.add_row(r["dataset"], "yes" if r["present"] else "no", size, verified, ", ".join(r["tasks"]))
    console.print(table)
