"""Eval runs: list a task's runs, trigger one, read one, cancel one, re-judge one."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response, status
from sqlalchemy.orm import Session, selectinload

from vlmevals.api import board_cache, overall_pages, represent
from vlmevals.api.deps import CanTrigger, PageDep, Paging, SessionDep, UserDep, body_model_known, user_name
from vlmevals.api.errors import responses
from vlmevals.api.resources import RejudgeRequest, RunPublic, RunSummary, TriggerRequest
from vlmevals.api.schemas.envelopes import CancelResponse, ConflictResponse, RunList
from vlmevals.catalogue.store import get_model, get_task
from vlmevals.core.errors import ConflictError, NotFoundError
from vlmevals.core.settings import get_settings
from vlmevals.core.vocabulary import RunStatus
from vlmevals.db.engine import get_engine, session_scope
from vlmevals.db.models import SLUG_PATTERN, EvalRun, Model, Task
from vlmevals.runs import lifecycle as run_rows
from vlmevals.runs import rejudge, triggering
from vlmevals.runs.queries import list_runs

router = APIRouter(tags=["runs"])
TaskName = Annotated[str, Path(pattern=SLUG_PATTERN, description="catalogue name of the task")]
RunId = Annotated[int, Path(ge=1, le=2**63 - 1, description="eval run id")]


def _summary(request: Request, run_id: int) -> RunSummary:
    with session_scope(get_engine()) as s:
        return represent.run_summary(request, run_rows.get_run(s, run_id))


def _listing(
    request: Request, session: Session, task: Task | None, model: Model | None, statuses: list[RunStatus], page: Paging
) -> Response:
    """A page of runs as JSON, cached while the live stamp stands (board_cache: every write to an active run,
    new runs, events, model and task edits move it); gzip-compressed when the client takes it."""

    def render() -> overall_pages.RenderedPage:
        rows, count = list_runs(session, task, statuses=statuses, model=model, limit=page.limit, offset=page.offset)
        body = RunList(data=[represent.run_summary(request, r) for r in rows], count=count)
        return overall_pages.RenderedPage(body.__pydantic_serializer__.to_json(body))

    key = ("runs", represent.api_root(request), task and task.id, model and model.id, tuple(sorted(set(statuses))))
    got = board_cache.cached_page(session, (*key, page.limit, page.offset), render)
    return overall_pages.respond(got, request.headers.get("accept-encoding", ""))


@router.get("/tasks/{task_name}/runs", response_model=RunList, responses=responses(401, 403, 404, 422))
def list_task_runs(
    request: Request,
    task_name: TaskName,
    session: SessionDep,
    page: PageDep,
    run_status: Annotated[list[RunStatus] | None, Query(alias="status", description="repeat for several")] = None,
    model: Annotated[str | None, Query(pattern=SLUG_PATTERN, description="catalogue name of a model")] = None,
) -> Response:
    """The task's runs, newest first; filter by status (e.g. `?status=queued&status=running`) and model."""
    task = get_task(session, task_name)
    m = get_model(session, model) if model else None
    return _listing(request, session, task, m, run_status or [], page)


@router.get("/runs", response_model=RunList, responses=responses(401, 403, 404, 422))
def list_all_runs(
    request: Request,
    session: SessionDep,
    page: PageDep,
    run_status: Annotated[list[RunStatus] | None, Query(alias="status", description="repeat for several")] = None,
    model: Annotated[str | None, Query(pattern=SLUG_PATTERN, description="catalogue name of a model")] = None,
    task: Annotated[str | None, Query(pattern=SLUG_PATTERN, description="catalogue name of a task")] = None,
) -> Response:
    """Runs of every task, newest first (e.g. everything queued or running: `?status=queued&status=running`)."""
    t = get_task(session, task) if task else None
    m = get_model(session, model) if model else None
    return _listing(request, session, t, m, run_status or [], page)


@router.post(
    "/tasks/{task_name}/runs",
    response_model=RunSummary,
    status_code=status.HTTP_201_CREATED,
    dependencies=[CanTrigger],
    responses=responses(400, 401, 403, 404, 409, 422, 503, conflict_model=ConflictResponse),
)
def trigger_run(request: Request, task_name: TaskName, body: TriggerRequest, user: UserDep) -> RunSummary:
    """Start an evaluation: the run row (`queued`) and an `eval_run` DAG run with its id in the conf.

    If the same task x model is already queued or running, answers 409 with that run's id unless `force`;
    an unknown task 404, an unknown model 422.
    """
    with session_scope(get_engine()) as s:
        get_task(s, task_name)
        body_model_known(s, body.model_name)
    try:
        got = triggering.trigger(
            get_engine(),
            task_name,
            body.model_name,
            user=user_name(user),
            options=body.options.model_dump(exclude_none=True),
            force=body.force,
        )
    except ConflictError as err:
        if err.existing_id is not None:
            err.run = _summary(request, err.existing_id).model_dump(mode="json")  # type: ignore[attr-defined]
        raise
    return _summary(request, got.run_id)


@router.get("/runs/{run_id}", response_model=RunPublic, responses=responses(401, 403, 404, 422))
def get_run(request: Request, run_id: RunId, session: SessionDep) -> RunPublic:
    """One run: status, progress, metrics, error, timestamps, history and links to its Airflow run and logs."""
    run = session.get(EvalRun, run_id, options=[selectinload(EvalRun.events)])
    if run is None:
        raise NotFoundError(f"no eval run with id {run_id}")
    return represent.run_public(request, run)


@router.post(
    "/runs/{run_id}/cancel",
    response_model=CancelResponse,
    dependencies=[CanTrigger],
    responses=responses(401, 403, 404, 409, 422),
)
def cancel_run(request: Request, run_id: RunId, user: UserDep) -> CancelResponse:
    """Cancel a queued or running run: the row becomes `cancelled` and its DAG run is failed (tasks killed)."""
    stopped = triggering.cancel(get_engine(), run_id, user=user_name(user))
    return CancelResponse(run=_summary(request, run_id), dag_run_stopped=stopped)


@router.post(
    "/runs/{run_id}/rejudge",
    response_model=RunSummary,
    status_code=status.HTTP_201_CREATED,
    dependencies=[CanTrigger],
    responses=responses(400, 401, 403, 404, 409, 422, 503, conflict_model=ConflictResponse),
)
def rejudge_run(request: Request, run_id: RunId, body: RejudgeRequest, user: UserDep) -> RunSummary:
    """Score a completed run's predictions again with another judge: a new run of the same task x model that
    skips inference (no GPU) and records `source_run_id`; both stay on the boards.

    409 when the run is not completed, or was judged by the same judge already (send `force`); 422 when its
    predictions are gone or it evaluated a sample limit only; 404 for an unknown run.
    """
    got = rejudge.trigger_rejudge(
        get_engine(), run_id, judge=body.judge, force=body.force, user=user_name(user), settings=get_settings()
    )
    return _summary(request, got.run_id)
