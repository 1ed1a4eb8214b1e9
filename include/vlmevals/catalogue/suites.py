"""Suites: named, ordered, optionally weighted sets of tasks (the columns of an overall board).

A suite is written in one transaction with all its tasks, after every task name was resolved: an unknown
task refuses the whole suite, so nothing half-created stays behind.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from vlmevals.catalogue.schemas.suites import SuiteCreate, SuiteMemberPublic, SuitePublic
from vlmevals.core.errors import ConflictError, InvalidRequestError, NotFoundError
from vlmevals.db.models import Suite, SuiteTask, Task


def _resolve_tasks(session: Session, body: SuiteCreate) -> list[SuiteTask]:
    """The suite's members in order; InvalidRequestError naming every unknown task and the fix."""
    names = [m.task for m in body.tasks]
    found = {t.name: t for t in session.scalars(select(Task).where(Task.name.in_(names)))}
    missing = [n for n in names if n not in found]
    if missing:
        raise InvalidRequestError(
            f"tasks: unknown task(s) {', '.join(repr(n) for n in missing)}; register them first "
            "(POST /api/evals/tasks or the seed file) or remove them from the suite"
        )
    return [
        SuiteTask(task_id=found[m.task].id, task=found[m.task], position=i, weight=m.weight)
        for i, m in enumerate(body.tasks)
    ]


def create_suite(session: Session, body: SuiteCreate) -> Suite:
    """A new suite; ConflictError if the name is taken, InvalidRequestError for unknown tasks."""
    if session.scalar(select(Suite.id).where(Suite.name == body.name)) is not None:
        raise ConflictError(f"a suite named {body.name!r} already exists; pick another name")
    members = _resolve_tasks(session, body)
    suite = Suite(name=body.name, display_name=body.display_name, description=body.description, members=members)
    session.add(suite)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as err:  # lost a race with a concurrent create
        raise ConflictError(f"a suite named {body.name!r} already exists; pick another name") from err
    return suite


def upsert_suite(session: Session, body: SuiteCreate) -> str:
    """Create or replace a suite from the seed file: 'created', 'updated' or 'unchanged'."""
    suite = session.scalar(
        select(Suite).where(Suite.name == body.name).options(selectinload(Suite.members).joinedload(SuiteTask.task))
    )
    if suite is None:
        create_suite(session, body)
        return "created"
    stored = (suite.display_name, suite.description, [(m.task.name, m.weight) for m in suite.members])
    if stored == (body.display_name, body.description, [(m.task, m.weight) for m in body.tasks]):
        return "unchanged"
    members = _resolve_tasks(session, body)
    suite.display_name, suite.description = body.display_name, body.description
    suite.members.clear()
    session.flush()  # the old rows go before the new ones take their positions
    suite.members.extend(members)
    session.flush()
    return "updated"


def get_suite(session: Session, name: str) -> Suite:
    suite = session.scalar(
        select(Suite).where(Suite.name == name).options(selectinload(Suite.members).joinedload(SuiteTask.task))
    )
    if suite is None:
        known = ", ".join(session.scalars(select(Suite.name).order_by(Suite.name).limit(20)))
        raise NotFoundError(
            f"unknown suite {name!r}; create it first (POST /api/evals/suites or the seed file). "
            f"Known suites: {known or 'none'}"
        )
    return suite


def list_suites(session: Session, limit: int = 50, offset: int = 0) -> tuple[list[Suite], int]:
    count = session.scalar(select(func.count()).select_from(Suite)) or 0
    rows = session.scalars(
        select(Suite)
        .order_by(Suite.name)
        .limit(limit)
        .offset(offset)
        .options(selectinload(Suite.members).joinedload(SuiteTask.task))
    ).all()
    return list(rows), count


def to_public(suite: Suite) -> SuitePublic:
    return SuitePublic(
        name=suite.name,
        display_name=suite.display_name,
        description=suite.description,
        created_at=suite.created_at,
        tasks=[
            SuiteMemberPublic(
                task=m.task.name,
                weight=m.weight,
                display_name=m.task.display_name,
                higher_is_better=m.task.higher_is_better,
                metric_scale=m.task.metric_scale,
            )
            for m in suite.members
        ],
    )
