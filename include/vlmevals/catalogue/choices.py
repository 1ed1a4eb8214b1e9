"""The task and model names the trigger forms offer, kept in a small JSON file in Airflow's home.

DAG files must not query the database while parsing, yet the form should offer the catalogue: the catalogue
writes this file whenever its tasks or models change (`vlmevals seed`, the evals API) and the DAG files read
it (stdlib only, microseconds). Without the file (a fresh checkout, the DAG tests) the seed file's names are
offered. The dag-processor re-parses every 30 s, so a new model shows up in the form within that.
Default place: `$AIRFLOW_HOME/catalogue_choices.json` (the local stack: `.local/airflow/`), so each stack and
each test session has its own; where the API and the dag-processor run on different hosts, point
`EVALS_CATALOGUE_CHOICES` of both at one shared file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

CHOICES_ENV = "EVALS_CATALOGUE_CHOICES"
SEED_FILE = Path(__file__).with_name("seed.yaml")
"""The catalogue's seed data (tasks, models, enrolments) that `vlmevals seed` loads."""


def choices_file() -> Path:
    if os.environ.get(CHOICES_ENV):
        return Path(os.environ[CHOICES_ENV])
    return Path(os.environ.get("AIRFLOW_HOME") or Path.home() / "airflow") / "catalogue_choices.json"


def _names(items: object) -> list[str]:
    if not isinstance(items, list):
        return []
    return sorted({str(i["name"]) for i in items if isinstance(i, dict) and i.get("name")})


def read_choices(path: Path | None = None) -> dict[str, list[str]]:
    """`{"tasks": [...], "models": [...]}` from the choices file, else from the seed file; never raises."""
    for source in (path or choices_file(), SEED_FILE):
        try:
            text = source.read_text()
            data = json.loads(text) if source.suffix == ".json" else yaml.safe_load(text)
        except (OSError, ValueError, yaml.YAMLError):
            continue
        if isinstance(data, dict):
            return {"tasks": _names(data.get("tasks")), "models": _names(data.get("models"))}
    return {"tasks": [], "models": []}


def write_choices(session: Session, path: Path | None = None) -> Path:
    """Rewrite the choices file from the catalogue's tables (atomically: a parse never sees half a file)."""
    from sqlalchemy import select

    from vlmevals.db.models import Model, Task

    data = {
        "tasks": [{"name": n} for n in session.scalars(select(Task.name).order_by(Task.name))],
        "models": [{"name": n} for n in session.scalars(select(Model.name).order_by(Model.name))],
    }
    target = path or choices_file()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    tmp.replace(target)
    return target
