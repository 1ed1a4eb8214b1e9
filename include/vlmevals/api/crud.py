"""What the tasks and models routers share: a page of catalogue rows by name, and storing a new one whose
name must be free (a 409 naming the fix, also when a concurrent create wins the race)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from vlmevals.api.deps import Paging
from vlmevals.core.errors import ConflictError
from vlmevals.db.models import Model, Task

Row = TypeVar("Row", Task, Model)


def page_by_name(session: Session, cls: type[Row], page: Paging) -> tuple[Sequence[Row], int]:
    """One page of `cls` rows ordered by name, and how many there are in all."""
    count = session.scalar(select(func.count()).select_from(cls)) or 0
    rows = session.scalars(select(cls).order_by(cls.name).limit(page.limit).offset(page.offset)).all()
    return rows, count


def insert_named(session: Session, row: Row, kind: str) -> Row:
    """Store `row` (a task or model) and return it refreshed; its name taken is a ConflictError (409)."""
    taken = ConflictError(f"a {kind} named {row.name!r} already exists; pick another name")
    if session.scalar(select(type(row).id).where(type(row).name == row.name)) is not None:
        raise taken
    session.add(row)
    try:
        session.flush()
    except IntegrityError as err:  # lost a race with a concurrent create
        raise taken from err
    session.refresh(row)
    return row
