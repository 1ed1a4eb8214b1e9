"""Checkpoints of a model: register one (evaluated at once on its suite) and list them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, status

from vlmevals.api.deps import CanTrigger, PageDep, SessionDep, UserDep, user_name
from vlmevals.api.errors import responses
from vlmevals.api.represent import api_root
from vlmevals.api.schemas.overall import CheckpointTriggerResponse, SuiteRunActive, SuiteRunFailed, SuiteRunStarted
from vlmevals.catalogue.checkpoints import list_checkpoints, to_public
from vlmevals.catalogue.schemas.checkpoints import CheckpointCreate, CheckpointList
from vlmevals.db.engine import get_engine
from vlmevals.db.models import SLUG_PATTERN
from vlmevals.runs.checkpoint_runs import register_and_trigger

router = APIRouter(prefix="/models", tags=["checkpoints"])
ModelName = Annotated[str, Path(pattern=SLUG_PATTERN, description="catalogue name of the model")]


@router.get("/{name}/checkpoints", response_model=CheckpointList, responses=responses(401, 403, 404, 422))
def get_checkpoints(name: ModelName, session: SessionDep, page: PageDep) -> CheckpointList:
    """The model's checkpoints by step (label-only ones after), then by registration time."""
    rows, count = list_checkpoints(session, name, page.limit, page.offset)
    return CheckpointList(data=[to_public(c) for c in rows], count=count)


@router.post(
    "/{name}/checkpoints",
    response_model=CheckpointTriggerResponse,
    status_code=status.HTTP_201_CREATED,
    dependencies=[CanTrigger],
    responses=responses(400, 401, 403, 404, 409, 422, 503),
)
def post_checkpoint(
    request: Request, name: ModelName, body: CheckpointCreate, user: UserDep
) -> CheckpointTriggerResponse:
    """Register a checkpoint (a step or label; a weights path or a Hub revision) and evaluate it on the
    body's `suite` or the model's: one eval run per task of the suite, of the model at this checkpoint."""
    got = register_and_trigger(get_engine(), name, body, user=user_name(user))
    api = api_root(request)
    return CheckpointTriggerResponse(
        checkpoint=got.checkpoint,
        suite=got.runs.suite,
        started=[SuiteRunStarted(**e, link=f"{api}/runs/{e['run_id']}") for e in got.runs.started],
        already_active=[
            SuiteRunActive(**e, link=f"{api}/runs/{e['run_id']}" if e["run_id"] else None)
            for e in got.runs.already_active
        ],
        failed=[SuiteRunFailed(**e) for e in got.runs.failed],
    )
