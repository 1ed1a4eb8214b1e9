"""The nightly cron (UTC), from the environment: read at DAG parse time, so this module imports nothing heavy
and queries no database."""

from __future__ import annotations

import os

SCHEDULE_ENV = "EVALS_NIGHTLY_SCHEDULE"
DEFAULT_SCHEDULE = "0 2 * * *"
OFF = ("off", "none")


def schedule() -> str | None:
    """The cron expression, or None when the schedule is switched off (`off`/`none`: by hand only)."""
    value = os.environ.get(SCHEDULE_ENV, "").strip() or DEFAULT_SCHEDULE
    return None if value.lower() in OFF else value
