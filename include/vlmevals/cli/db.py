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
