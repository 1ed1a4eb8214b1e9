"""The catalogue's tasks and models: lookups by name, with errors that list what is known."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from vlmevals.core.errors import NotFoundError
from vlmevals.db.models import Model, Task


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
