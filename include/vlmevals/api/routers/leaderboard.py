"""Leaderboards and score histories of a task."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request, Response

from vlmevals.api import board_cache, represent
from vlmevals.api.deps import SessionDep
from vlmevals.api.errors import responses
from vlmevals.api.overall_pages import RenderedPage, respond
from vlmevals.api.represent import api_root
from vlmevals.api.resources import HistoryPointOut, HistoryResponse, HistorySeriesOut, LeaderboardResponse
from vlmevals.catalogue.store import get_model, get_task
from vlmevals.db.models import SLUG_PATTERN
from vlmevals.results import leaderboard as queries

router = APIRouter(prefix="/tasks/{task_name}/leaderboard", tags=["leaderboard"])
TaskName = Annotated[str, Path(pattern=SLUG_PATTERN, description="catalogue name of the task")]
IncludeLimited = Annotated[
    bool,
    Query(description="also consider runs on a subset (option `limit`), marked `limited`; default: full-dataset only"),
]


@router.get("", response_model=LeaderboardResponse, responses=responses(401, 403, 404, 422))
def get_leaderboard(
    request: Request,
    task_name: TaskName,
    session: SessionDep,
    pick: Annotated[Literal["best", "latest"], Query(description="each model's best or latest completed run")] = "best",
    limit: Annotated[int, Query(ge=1, le=1000, description="rows per page (ranks are over all models)")] = 100,
    offset: Annotated[int, Query(ge=0, description="rows to skip")] = 0,
    include_limited: IncludeLimited = False,
) -> Response:
    """One row per model, ranked by the task's primary metric in its direction (`higher_is_better`), from
    full-dataset runs: a run with the option `limit` counts only with `include_limited=true`, marked `limited`.

    Ties share a rank; models with runs but no completed score are listed under `unranked`. `count` is the
    number of ranked models; `data` holds the page `offset`..`offset + limit`.
    """
    task = get_task(session, task_name)
    api = api_root(request)

    def render() -> RenderedPage:
        board = queries.leaderboard(session, task, pick, limit=limit, offset=offset, include_limited=include_limited)
        body = represent.leaderboard(request, board)
        return RenderedPage(body.__pydantic_serializer__.to_json(body))

    # cached while the results stamp stands (see board_cache); the key holds what else the page shows.
    # A worker log appearing (or deleted) later is not seen: a completed run's log is written before it completes
    t = (task.id, task.name, task.display_name, task.primary_metric_key, task.higher_is_better, task.metric_scale)
    page = board_cache.cached_page(
        session, ("leaderboard", api, *t, pick, limit, offset, include_limited), render, task_id=task.id
    )
    return respond(page, request.headers.get("accept-encoding", ""))


@router.get("/history", response_model=HistoryResponse, responses=responses(401, 403, 404, 422))
def get_history(
    task_name: TaskName,
    session: SessionDep,
    model: Annotated[str | None, Query(pattern=SLUG_PATTERN, description="only this model")] = None,
    per_model: Annotated[int, Query(ge=1, le=queries.MAX_HISTORY_POINTS, description="last N runs per model")] = 50,
    include_limited: IncludeLimited = False,
) -> HistoryResponse:
    """Each model's completed full-dataset scores over time (e.g. nightly re-evaluations), oldest first."""
    task = get_task(session, task_name)
    m = get_model(session, model) if model else None
    series = queries.score_history(session, task, model=m, per_model=per_model, include_limited=include_limited)
    data = [
        HistorySeriesOut(
            model_name=s.model.name,
            model_display_name=s.model.display_name,
            params_b=s.model.params_b,
            points=[
                HistoryPointOut(
                    run_id=p.run_id,
                    finished_at=p.finished_at,
                    score=p.score,
                    limited=p.sample_limit is not None,
                    sample_limit=p.sample_limit,
                )
                for p in s.points
            ],
        )
        for s in series
    ]
    return HistoryResponse(
        task=represent.task_header(task), include_limited=include_limited, data=data, count=len(data)
    )
