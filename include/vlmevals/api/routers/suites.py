"""Suites: list, read, create; trigger a model on a suite; the suite's overall board (JSON or CSV)."""

from __future__ import annotations

import csv
import io
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response, status
from fastapi.responses import PlainTextResponse

from vlmevals.api.deps import CanTrigger, PageDep, SessionDep, UserDep, body_model_known, user_name
from vlmevals.api.errors import responses
from vlmevals.api.overall_schemas import (
    OverallBoardResponse,
    OverallColumn,
    OverallSuite,
    SuiteRunActive,
    SuiteRunFailed,
    SuiteRunStarted,
    SuiteTriggerResponse,
)
from vlmevals.api.represent import api_root
from vlmevals.api.resources import TriggerRequest
from vlmevals.catalogue.suite_schemas import SuiteCreate, SuiteList, SuitePublic
from vlmevals.catalogue.suites import create_suite, get_suite, list_suites, to_public
from vlmevals.db.engine import get_engine, session_scope
from vlmevals.db.models import SLUG_PATTERN, Suite
from vlmevals.results import board_cache, overall
from vlmevals.runs.suite_runs import trigger_suite

router = APIRouter(prefix="/suites", tags=["suites"])
MAX_RENDERED_PAGES = 32  # rendered pages kept per cached board (page 1 in a few sorts is the common case)
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


def _row(api: str, suite_tasks: list[str], row: overall.Row) -> dict[str, Any]:
    """An OverallRow as plain data: the page is validated once as a whole (100 x 100 cells), which is many
    times faster than building 10,000 OverallCell models one by one."""
    cells: dict[str, dict[str, Any] | None] = {
        t: (
            {
                "score": c.score,
                "value": c.value,
                "task_rank": c.task_rank,
                "run_id": c.run_id,
                "link": f"{api}/runs/{c.run_id}",
            }
            if (c := row.cells.get(t))
            else None
        )
        for t in suite_tasks
    }
    m = row.model
    return {
        "rank": row.rank,
        "model_name": m.name,
        "model_display_name": m.display_name,
        "params_b": m.params_b,
        "average": row.average,
        "mean_rank": row.mean_rank,
        "covered": row.covered,
        "coverage": f"{row.covered}/{len(suite_tasks)}",
        "cells": cells,
    }


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
) -> OverallBoardResponse | Response:
    """The suite's model x task matrix of values normalised to 0-100 (higher is better), the weighted average,
    the mean rank and the coverage. Ranked rows need every task of the suite; models missing tasks are listed
    under `partial` (by coverage, then average) without ranks. `limit`/`offset` page both lists."""
    s = get_suite(session, suite)
    board = board_cache.cached_board(session, s, pick)
    api = api_root(request)
    # what the page depends on beyond the (cached) board itself
    key = (api, sort, order, limit, offset, s.display_name, tuple(m.task.display_name for m in s.members))
    if fmt == "json" and (hit := board.rendered.get(key)) is not None:
        return Response(hit, media_type="application/json")
    body = _body(api, s, board, sort, order, limit, offset)
    if fmt == "csv":
        return PlainTextResponse(
            _csv(body),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{s.name}-overall.csv"'},
        )
    # validated already: serialised once here, not converted and dumped again by FastAPI (10,000 cells)
    out = body.model_dump_json().encode()
    if len(board.rendered) >= MAX_RENDERED_PAGES:
        board.rendered.clear()
    board.rendered[key] = out
    return Response(out, media_type="application/json")


def _body(
    api: str, s: Suite, board: overall.OverallBoard, sort: str, order: overall.Order | None, limit: int, offset: int
) -> OverallBoardResponse:
    """The page of the board: rows sorted and sliced, as plain data validated once."""
    rows = overall.sort_rows(board, sort, order)
    names = [m.task.name for m in s.members]
    return OverallBoardResponse.model_validate(
        dict(
            suite=OverallSuite(
                name=s.name,
                display_name=s.display_name,
                tasks=[
                    OverallColumn(
                        task=m.task.name,
                        display_name=m.task.display_name,
                        weight=m.weight,
                        higher_is_better=m.task.higher_is_better,
                        metric_scale=m.task.metric_scale,
                        leaderboard=f"{api}/tasks/{m.task.name}/leaderboard",
                    )
                    for m in s.members
                ],
            ),
            pick=board.pick,
            sort=sort,
            order=order or overall.default_order(sort),
            count=len(rows),
            partial_count=len(board.partial),
            data=[_row(api, names, r) for r in rows[offset : offset + limit]],
            partial=[_row(api, names, r) for r in board.partial[offset : offset + limit]],
        )
    )
