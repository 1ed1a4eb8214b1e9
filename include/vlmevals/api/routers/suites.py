"""Suites: list, read, create; trigger a model on a suite; the suite's overall board (JSON or CSV)."""

from __future__ import annotations

import csv
import io
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request, Response, status
from fastapi.responses import PlainTextResponse

from vlmevals.api import board_cache, overall_pages
from vlmevals.api.deps import CanTrigger, PageDep, SessionDep, UserDep, body_model_known, user_name
from vlmevals.api.errors import responses
from vlmevals.api.represent import api_root
from vlmevals.api.resources import TriggerRequest
from vlmevals.api.schemas.overall import (
    OverallBoardResponse,
    SuiteRunActive,
    SuiteRunFailed,
    SuiteRunStarted,
    SuiteTriggerResponse,
)
from vlmevals.catalogue.schemas.suites import SuiteCreate, SuiteList, SuitePublic
from vlmevals.catalogue.suites import create_suite, get_suite, list_suites, to_public
from vlmevals.db.engine import get_engine, session_scope
from vlmevals.db.models import SLUG_PATTERN
from vlmevals.runs.suite_runs import trigger_suite

router = APIRouter(prefix="/suites", tags=["suites"])
SuiteName = Annotated[str, Path(pattern=SLUG_PATTERN, description="catalogue name of the suite")]


@router.get("", response_model=SuiteList, responses=responses(401, 403, 422))
def get_suites(session: SessionDep, page: PageDep) -> SuiteList:
    """All suites, by name, with their tasks in order."""
    rows, count = list_suites(session, page.limit, page.offset)
    return SuiteList(data=[to_public(s) for s in rows], count=count)


@router.get("/{name}", response_model=SuitePublic, responses=responses(401, 403, 404, 422))
def get_one(name: SuiteName, session: SessionDep) -> SuitePublic:
    return to_public(get_suite(session, name))


@router.post(
    "",
    response_model=SuitePublic,
    status_code=status.HTTP_201_CREATED,
    dependencies=[CanTrigger],
    responses=responses(400, 401, 403, 409, 422),
)
def post_suite(body: SuiteCreate, session: SessionDep) -> SuitePublic:
    """Create a suite from task names (or `{task, weight}`); an unknown task refuses the whole suite."""
    suite = create_suite(session, body)
    return to_public(get_suite(session, suite.name))


@router.post(
    "/{suite}/runs",
    response_model=SuiteTriggerResponse,
    status_code=status.HTTP_201_CREATED,
    dependencies=[CanTrigger],
    responses={
        200: {"model": SuiteTriggerResponse, "description": "nothing started: every task already active or refused"},
        **responses(400, 401, 403, 404, 422),
    },
)
def trigger(
    request: Request, suite: SuiteName, body: TriggerRequest, user: UserDep, response: Response
) -> SuiteTriggerResponse:
    """One eval run per task of the suite. A task whose pair is already queued or running is listed under
    `already_active` (not started again unless `force`); 201 if anything started, else 200. An unknown suite
    answers 404, an unknown model 422."""
    with session_scope(get_engine()) as s:
        get_suite(s, suite)
        body_model_known(s, body.model_name)
    got = trigger_suite(
        get_engine(),
        suite,
        body.model_name,
        user=user_name(user),
        options=body.options.model_dump(exclude_none=True),
        force=body.force,
    )
    api = api_root(request)
    if not got.started:
        response.status_code = status.HTTP_200_OK
    return SuiteTriggerResponse(
        suite=got.suite,
        model_name=got.model,
        started=[SuiteRunStarted(**e, link=f"{api}/runs/{e['run_id']}") for e in got.started],
        already_active=[
            SuiteRunActive(**e, link=f"{api}/runs/{e['run_id']}" if e["run_id"] else None) for e in got.already_active
        ],
        failed=[SuiteRunFailed(**e) for e in got.failed],
    )


def _csv(body: OverallBoardResponse) -> str:
    tasks = [c.task for c in body.suite.tasks]
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["rank", "model_name", "model_display_name", "average", "mean_rank", "coverage", *tasks])
    for r in [*body.data, *body.partial]:
        values = [f"{c.value:.4f}" if (c := r.cells.get(t)) else "" for t in tasks]
        mean_rank = "" if r.mean_rank is None else f"{r.mean_rank:.4f}"
        w.writerow(
            [
                "" if r.rank is None else r.rank,
                r.model_name,
                r.model_display_name,
                f"{r.average:.4f}",
                mean_rank,
                r.coverage,
                *values,
            ]
        )
    return buf.getvalue()


@router.get(
    "/{suite}/leaderboard",
    response_model=OverallBoardResponse,
    responses={**responses(401, 403, 404, 422), 200: {"content": {"text/csv": {}}}},
)
def leaderboard(
    request: Request,
    suite: SuiteName,
    session: SessionDep,
    pick: Annotated[Literal["best", "latest"], Query(description="each cell's best or latest completed run")] = "best",
    sort: Annotated[str, Query(max_length=128, description="rank, average, mean_rank, covered, model or a task")] = (
        "rank"
    ),
    order: Annotated[Literal["asc", "desc"] | None, Query(description="default: the column's natural order")] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="rows per page (ranks are over all models)")] = 100,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1, description="rows to skip")] = 0,
    fmt: Annotated[Literal["json", "csv"], Query(alias="format", description="csv: the same rows as CSV")] = "json",
    include_limited: Annotated[
        bool, Query(description="also consider runs on a subset (option `limit`), marked `limited`; default: no")
    ] = False,
) -> OverallBoardResponse | Response:
    """The suite's model x task matrix of values normalised to 0-100 (higher is better), the weighted average,
    the mean rank and the coverage. Ranked rows need every task of the suite; models missing tasks are listed
    under `partial` (by coverage, then average) without ranks. `limit`/`offset` page both lists. Cells come
    from full-dataset runs; with `include_limited=true` runs on a subset count too, their cells marked `limited`."""
    s = get_suite(session, suite)
    board = board_cache.cached_board(session, s, pick, include_limited=include_limited)
    api = api_root(request)
    if fmt == "csv":
        return PlainTextResponse(
            _csv(overall_pages.body(api, s, board, sort, order, limit, offset)),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{s.name}-overall.csv"'},
        )
    # the validated page as JSON bytes, gzip-compressed when the client takes it (see overall_pages)
    page = overall_pages.page(api, s, board, sort, order, limit, offset)
    return overall_pages.respond(page, request.headers.get("accept-encoding", ""))
