"""Tasks (benchmarks) of the catalogue."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, status

from vlmevals.api.crud import insert_named, page_by_name
from vlmevals.api.deps import CanTrigger, PageDep, SessionDep
from vlmevals.api.errors import responses
from vlmevals.api.schemas.envelopes import TaskList
from vlmevals.catalogue.choices import write_choices
from vlmevals.catalogue.names import check_task
from vlmevals.catalogue.schemas.tasks_models import TaskCreate, TaskPublic
from vlmevals.catalogue.store import get_task
from vlmevals.db.models import SLUG_PATTERN, Task

router = APIRouter(prefix="/tasks", tags=["tasks"])
TaskName = Annotated[str, Path(pattern=SLUG_PATTERN, description="catalogue name of the task")]


@router.get("", response_model=TaskList, responses=responses(401, 403, 422))
def list_tasks(session: SessionDep, page: PageDep) -> TaskList:
    """All tasks, by name."""
    rows, count = page_by_name(session, Task, page)
    return TaskList(data=[TaskPublic.model_validate(t) for t in rows], count=count)


@router.get("/{name}", response_model=TaskPublic, responses=responses(401, 403, 404, 422))
def get_one(name: TaskName, session: SessionDep) -> TaskPublic:
    return TaskPublic.model_validate(get_task(session, name))


@router.post(
    "",
    response_model=TaskPublic,
    status_code=status.HTTP_201_CREATED,
    dependencies=[CanTrigger],
    responses=responses(400, 401, 403, 409, 422),
)
def create_task(body: TaskCreate, session: SessionDep) -> TaskPublic:
    """Register a benchmark (needs the right to trigger eval_run)."""
    check = check_task(body)  # 422 on a dataset VLMEvalKit does not know, with the closest names
    task = insert_named(
        session,
        Task(**body.model_dump(), needs_llm_judge=check.needs_llm_judge, default_judge=check.default_judge),
        "task",
    )
    write_choices(session)  # the trigger forms offer it after the next DAG parse
    return TaskPublic.model_validate(task)
