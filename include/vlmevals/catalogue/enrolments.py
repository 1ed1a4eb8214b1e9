"""Which (task, model) pairs the nightly DAG re-evaluates: enrol a pair, a whole task, a whole model or a suite.

A row with task and model is a pair; task only means every model on that task; model only, every task of that
model; suite and model, that model on every task of the suite; suite only, every model that has an enrolment
or a completed run on one of the suite's tasks (the expansion is vlmevals.nightly.planning.resolve_pairs).
A pair row with `enabled = false` is an exclusion: it keeps the pair out even when its task, model or suite is
enrolled (that is what unenrolling one pair of an enrolled task stores).
"""

from __future__ import annotations

from pydantic import ValidationError
from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from vlmevals.catalogue.schemas.tasks_models import EnrolmentCreate, EnrolmentPublic
from vlmevals.catalogue.store import get_model, get_task
from vlmevals.catalogue.suites import get_suite
from vlmevals.core.errors import InvalidRequestError, NotFoundError
from vlmevals.db.models import Enrolment, Model, Suite, SuiteTask, Task

Target = tuple[int | None, int | None, int | None]  # task id, model id, suite id


def _scope(row: Enrolment) -> str:
    if row.suite_id:
        return "suite-model" if row.model_id else "suite"
    return "pair" if row.task_id and row.model_id else ("task" if row.task_id else "model")


def public(session: Session, row: Enrolment) -> EnrolmentPublic:
    task = session.get_one(Task, row.task_id).name if row.task_id else None
    model = session.get_one(Model, row.model_id).name if row.model_id else None
    suite = session.get_one(Suite, row.suite_id).name if row.suite_id else None
    return EnrolmentPublic(
        id=row.id,
        task=task,
        model=model,
        suite=suite,
        scope=_scope(row),
        enabled=row.enabled,
        created_by=row.created_by,
        created_at=row.created_at,
    )


def _ids(session: Session, body: EnrolmentCreate) -> Target:
    """The target's ids; 404 naming an unknown task, model or suite."""
    return (
        get_task(session, body.task).id if body.task else None,
        get_model(session, body.model).id if body.model else None,
        get_suite(session, body.suite).id if body.suite else None,
    )


def _is(column: InstrumentedAttribute[int | None], value: int | None) -> ColumnElement[bool]:
    return column.is_(None) if value is None else column == value


def _find(session: Session, ids: Target) -> Enrolment | None:
    task_id, model_id, suite_id = ids
    return session.scalar(
        select(Enrolment).where(
            _is(Enrolment.task_id, task_id), _is(Enrolment.model_id, model_id), _is(Enrolment.suite_id, suite_id)
        )
    )


def _label(body: EnrolmentCreate) -> str:
    return " x ".join(x for x in (body.task or (f"suite {body.suite}" if body.suite else None), body.model) if x)


def target(task: str | None, model: str | None, suite: str | None = None) -> EnrolmentCreate:
    """The enrolment target, validated as the API validates it (InvalidRequestError naming the fields)."""
    try:
        return EnrolmentCreate(task=task, model=model, suite=suite)
    except ValidationError as err:
        raise InvalidRequestError("; ".join(e["msg"].removeprefix("Value error, ") for e in err.errors())) from err


def enrol(
    session: Session, task: str | None, model: str | None, user: str | None = None, *, suite: str | None = None
) -> tuple[Enrolment, bool]:
    """Enrol (or re-enable); returns the row and whether anything changed."""
    ids = _ids(session, target(task, model, suite))
    row = _find(session, ids)
    if row is not None:
        if row.enabled:
            return row, False
        row.enabled, row.created_by = True, user or row.created_by
        session.flush()
        return row, True
    row = Enrolment(task_id=ids[0], model_id=ids[1], suite_id=ids[2], enabled=True, created_by=user)
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
                | ((Enrolment.model_id == model_id) & Enrolment.task_id.is_(None))
                | Enrolment.suite_id.in_(select(SuiteTask.suite_id).where(SuiteTask.task_id == task_id)),
            )
            .limit(1)
        )
        is not None
    )


def unenrol(
    session: Session, task: str | None, model: str | None, user: str | None = None, *, suite: str | None = None
) -> str:
    """Take a pair, task, model or suite out of the nightly run; says what was done."""
    body = target(task, model, suite)
    task_id, model_id, _ = ids = _ids(session, body)
    row = _find(session, ids)
    label = _label(body)
    if task_id and model_id and _covered_by_wider(session, task_id, model_id):
        if row is None:
            session.add(Enrolment(task_id=task_id, model_id=model_id, enabled=False, created_by=user))
        else:
            row.enabled = False
        session.flush()
        return f"{label} excluded (its task, model or suite stays enrolled)"
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
    """The seed file's `enrolments:` section ({task, model} or {suite, model}, either may be omitted): labels
    of the enrolments created and of those already there."""
    created: list[str] = []
    unchanged: list[str] = []
    for item in items:
        body = EnrolmentCreate.model_validate(item)
        _, changed = enrol(session, body.task, body.model, user="seed", suite=body.suite)
        target = body.task or (f"suite:{body.suite}" if body.suite else "*")
        (created if changed else unchanged).append(f"enrolment:{target}x{body.model or '*'}")
    return created, unchanged
