"""`vlmevals db upgrade|downgrade`: our tables' migrations, what a production deployment runs first."""

from __future__ import annotations

import typer

from vlmevals.cli import output

db_app = typer.Typer(help="Our tables' migrations (Alembic, in sql/).")


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    from vlmevals.db.engine import upgrade

    upgrade(revision=revision)
    output.console.print(f"migrated to {revision}")


@db_app.command("downgrade")
def db_downgrade(revision: str = "base") -> None:
    from vlmevals.db.engine import downgrade

    downgrade(revision=revision)
    output.console.print(f"downgraded to {revision}")


@db_app.command("verify-boards")
def db_verify_boards() -> None:
    """Recompute the board entries from the runs and compare them with the stored ones: exit 1 naming each
    difference (then `vlmevals db rebuild-boards` repairs them)."""
    from vlmevals.db.engine import get_engine
    from vlmevals.runs.board_entries import differences

    with get_engine().connect() as conn:
        found = differences(conn)
    if found:
        for line in found:
            output.console.print(line, markup=False)
        output.console.print(
            f"board entries differ from a recomputation: {len(found)} shown; run `vlmevals db rebuild-boards`"
        )
        raise typer.Exit(1)
    output.console.print("board entries match a recomputation from the runs")


@db_app.command("rebuild-boards")
def db_rebuild_boards() -> None:
    """Recompute every board entry from the runs (after runs were changed by hand in SQL), in one transaction."""
    from vlmevals.db.engine import get_engine
    from vlmevals.runs.board_entries import rebuild

    with get_engine().begin() as conn:
        n = rebuild(conn)
    output.console.print(f"board entries rebuilt: {n}")
