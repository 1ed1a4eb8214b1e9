"""Read side of checkpoint tracking: a model's checkpoints scored on a suite (score against step), and the
models that have checkpoints. Registration lives in routers/checkpoints.py."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from vlmevals.api.deps import SessionDep
from vlmevals.api.errors import responses
from vlmevals.db.models import SLUG_PATTERN
from vlmevals.results.checkpoint_scores import checkpoint_scores, checkpointed_models
from vlmevals.results.schemas.checkpoints import CheckpointedModelList, CheckpointScores

router = APIRouter(tags=["checkpoints"])
ModelName = Annotated[str, Path(pattern=SLUG_PATTERN, description="catalogue name of the model")]


@router.get(
    "/models/{name}/checkpoints/scores", response_model=CheckpointScores, responses=responses(401, 403, 404, 422)
)
def get_checkpoint_scores(
    name: ModelName,
    session: SessionDep,
    suite: Annotated[
        str | None, Query(pattern=SLUG_PATTERN, description="the suite to score on; default: the model's suite")
    ] = None,
) -> CheckpointScores:
    """Each checkpoint's latest completed run per task of the suite, normalised to 0-100 (the overall board's
    rule), its weighted average and coverage, drop flags and the best fully covered checkpoint; in training
    order (by step, labels without a step after). 404: unknown model or suite; 422: no `suite` given and the
    model has none."""
    return checkpoint_scores(session, name, suite)


@router.get("/checkpoint-scores", response_model=CheckpointedModelList, responses=responses(401, 403))
def get_checkpointed_models(session: SessionDep) -> CheckpointedModelList:
    """The models that have checkpoints (what GET /models/{name}/checkpoints/scores can draw), by name."""
    data = checkpointed_models(session)
    return CheckpointedModelList(data=data, count=len(data))
