"""`vlmevals enrol / unenrol / enrolments`: the nightly re-evaluation's enrolments from the command line.

Plain functions that `vlmevals.cli` registers as top-level commands; the target is validated by the API's own
schema (vlmevals.catalogue.enrolments.target), so the CLI refuses what the API refuses, with the same message.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from vlmevals.core.errors import EvalsError

console = Console()
TaskOpt = Annotated[str | None, typer.Option(help="task name (alone: every model on it)")]
ModelOpt = Annotated[str | None, typer.Option(help="model name (alone: every task of it)")]
SuiteOpt = Annotated[
    str | None, typer.Option(help="suite name (with --model: the model on its tasks; alone: every model on them)")
]


def _fail(err: Exception) -> typer.Exit:
    console.print(f"[red]error:[/] {err}")
    return typer.Exit(1)


def enrol(task: TaskOpt = None, model: ModelOpt = None, suite: SuiteOpt = None) -> None:
    """Add a pair, a whole task, a whole model or a suite to the nightly re-evaluation."""
    from vlmevals.catalogue.enrolments import enrol as do_enrol
    from vlmevals.catalogue.enrolments import public
    from vlmevals.db.engine import get_engine, session_scope

    try:
        with session_scope(get_engine()) as s:
            row, changed = do_enrol(s, task, model, user="cli", suite=suite)
            console.print(f"{'enrolled' if changed else 'already enrolled'}: {public(s, row).model_dump_json()}")
    except EvalsError as err:
        raise _fail(err) from err


def unenrol(task: TaskOpt = None, model: ModelOpt = None, suite: SuiteOpt = None) -> None:
    """Take a pair, a task, a model or a suite out of the nightly re-evaluation."""
    from vlmevals.catalogue.enrolments import unenrol as do_unenrol
    from vlmevals.db.engine import get_engine, session_scope

    try:
        with session_scope(get_engine()) as s:
            console.print(do_unenrol(s, task, model, user="cli", suite=suite))
    except EvalsError as err:
        raise _fail(err) from err


def enrolments() -> None:
    """List enrolments and the pairs the next nightly run covers."""
    from vlmevals.catalogue.enrolments import list_enrolments
    from vlmevals.db.engine import get_engine, session_scope
    from vlmevals.nightly.planning import resolve_pairs

    with session_scope(get_engine()) as s:
        for e in list_enrolments(s):
            state = "" if e.enabled else " [excluded]"
            target = f"suite={e.suite}" if e.suite else f"task={e.task or '*'}"
            console.print(f"{e.id}: {e.scope} {target} model={e.model or '*'}{state}")
        pairs = resolve_pairs(s)
        console.print(
            f"{len(pairs)} pair(s) in the nightly run: " + ", ".join(f"{t.name} x {m.name}" for t, m in pairs)
        )
