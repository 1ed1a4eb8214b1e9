"""The console the commands print through: one object, so a caller (a bench script, a test) can swap it.

Commands reach it as `output.console` at call time rather than importing the name, so the swap takes effect.
"""

from __future__ import annotations

import typer
from rich.console import Console

console = Console(soft_wrap=True)
"""soft_wrap: rich never breaks a line, so every URL and path stays whole in narrow terminals and pipes."""


def fail(err: Exception) -> typer.Exit:
    """Print an expected error as one red line; raise the returned Exit (status 1) from the error."""
    console.print(f"[red]error:[/] {err}")
    return typer.Exit(1)
