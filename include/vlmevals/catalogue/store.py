"""The catalogue's tasks and models: lookups by name, with errors that list what is known."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from vlmevals.core.errors import InvalidRequestError, NotFoundError
from vlmevals.db.models import Model, Suite, Task


def get_task(session: Session, name: str) -> Task:
    task = session.scalar(select(Task).where(Task.name == name))
    if task is None:
        known = ", ".join(session.scalars(select(Task.name).order_by(Task.name).limit(20)))
        raise NotFoundError(
            f"unknown task {name!r}; register it first (POST /api/evals/tasks or the seed "
            f"file). Known tasks: {known or 'none'}"
        )
    return task


def get_model(session: Session, name: str) -> Model:
    model = session.scalar(select(Model).where(Model.name == name))
    if model is None:
        known = ", ".join(session.scalars(select(Model.name).order_by(Model.name).limit(20)))
        raise NotFoundError(
            f"unknown model {name!r}; register it first (POST /api/evals/models or the seed "
            f"file). Known models: {known or 'none'}"
        )
    return model


def model_columns(session: Session, values: dict[str, Any]) -> dict[str, Any]:
    """A model's schema values as column values: the suite's name becomes its id (422 if unknown)."""
    out = {k: v for k, v in values.items() if k != "suite"}
    name = values.get("suite")
    if name is None:
        return {**out, "suite_id": None} if "suite" in values else out
    suite_id = session.scalar(select(Suite.id).where(Suite.name == name))
    if suite_id is None:
        raise InvalidRequestError(
            f"suite: unknown suite {name!r}; create it first (POST /api/evals/suites or the seed file), or "
            "leave suite out"
        )
    return {**out, "suite_id": suite_id}
