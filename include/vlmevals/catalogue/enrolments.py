"""Which (task, model) pairs the nightly DAG re-evaluates: enrol a pair, a whole task or a whole model.

A row with task and model is a pair; task only means every model on that task; model only, every task of that
model. A pair row with `enabled = false` is an exclusion: it keeps the pair out even when its task or model is
enrolled (that is what unenrolling one pair of an enrolled task stores).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from vlmevals.catalogue.schemas import EnrolmentCreate, EnrolmentPublic
from vlmevals.catalogue.store import get_model, get_task
from vlmevals.core.errors import InvalidRequestError, NotFoundError
from vlmevals.db.models import Enrolment, Model, Task


def _scope(task_id: int | None, model_id: int | None) -> str:
    return "pair" if task_id and model_id else ("task" if task_id else "model")


def public(session: Session, row: Enrolment) -> EnrolmentPublic:
    task = session.get_one(Task, row.task_id).name if row.task_id else None
    model = session.get_one(Model, row.model_id).name if row.model_id else None
    return EnrolmentPublic(
        id=row.id,
        task=task,
        model=model,
        scope=_scope(row.task_id, row.model_id),
        enabled=row.enabled,
        created_by=row.created_by,
        created_at=row.created_at,
    )


def _ids(session: Session, task: str | None, model: str | None) -> tuple[int | None, int | None]:
    if not task and not model:
        raise InvalidRequestError("give a task, a model, or both")
    return (get_task(session, task).id if task else None, get_model(session, model).id if model else None)


def _find(session: Session, task_id: int | None, model_id: int | None) -> Enrolment | None:
    return session.scalar(
        select(Enrolment).where(
            Enrolment.task_id.is_(None) if task_id is None else Enrolment.task_id == task_id,
            Enrolment.model_id.is_(None) if model_id is None else Enrolment.model_id == model_id,
        )
    )


def enrol(session: Session, task: str | None, model: str | None, user: str | None = None) -> tuple[Enrolment, bool]:
    """Enrol (or re-enable); returns the row and whether anything changed."""
    task_id, model_id = _ids(session, task, model)
    row = _find(session, task_id, model_id)
    if row is not None:
        if row.enabled:
            return row, False
        row.enabled, row.created_by = True, user or row.created_by
        session.flush()
        return row, True
    row = Enrolment(task_id=task_id, model_id=model_id, enabled=True, created_by=user)
    session.add(row)
    session.flush()
    session.refresh(row)
    return row, True


def _covered_by_wider(session: Session, task_id: int, model_id: int) -> bool:
    return (
        session.scalar(
            select(Enrolment.id)
            .where(
                Enrolment.enabled.is_(True),
                ((Enrolment.task_id == task_id) & Enrolment.model_id.is_(None))
                | ((Enrolment.model_id == model_id) & Enrolment.task_id.is_(None)),
            )
            .limit(1)
        )
        is not None
    )


def unenrol(session: Session, task: str | None, model: str | None, user: str | None = None) -> str:
    """Take a pair, task or model out of the nightly run; says what was done."""
    task_id, model_id = _ids(session, task, model)
    row = _find(session, task_id, model_id)
    label = " x ".join(x for x in (task, model) if x)
    if task_id and model_id and _covered_by_wider(session, task_id, model_id):
        if row is None:
            session.add(Enrolment(task_id=task_id, model_id=model_id, enabled=False, created_by=user))
        else:
            row.enabled = False
        session.flush()
        return f"{label} excluded (its task or model stays enrolled)"
    if row is None:
        raise NotFoundError(
            f"{label} is not enrolled; list enrolments with GET /api/evals/enrolments or `vlmevals enrolments`"
        )
    session.delete(row)
    session.flush()
    return f"{label} unenrolled"


def list_enrolments(session: Session) -> list[EnrolmentPublic]:
    rows = session.scalars(select(Enrolment).order_by(Enrolment.id)).all()
    return [public(session, r) for r in rows]


def seed_enrolments(session: Session, items: list[dict[str, str | None]]) -> tuple[list[str], list[str]]:
    """The seed file's `enrolments:` section ({task, model} each, either may be omitted): labels of the
    enrolments created and of those already there."""
    created: list[str] = []
    unchanged: list[str] = []
    for item in items:
        body = EnrolmentCreate.model_validate(item)
        _, changed = enrol(session, body.task, body.model, user="seed")
        (created if changed else unchanged).append(f"enrolment:{body.task or '*'}x{body.model or '*'}")
    return created, unchanged
