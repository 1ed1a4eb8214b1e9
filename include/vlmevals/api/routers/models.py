"""Models of the catalogue."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, status

from vlmevals.api.crud import insert_named, page_by_name
from vlmevals.api.deps import CanTrigger, PageDep, SessionDep
from vlmevals.api.errors import responses
from vlmevals.api.schemas.envelopes import ModelList
from vlmevals.catalogue.choices import write_choices
from vlmevals.catalogue.names import check_model
from vlmevals.catalogue.schemas.tasks_models import ModelCreate, ModelPublic, ModelUpdate
from vlmevals.catalogue.store import get_model, model_columns
from vlmevals.db.models import SLUG_PATTERN, Model

router = APIRouter(prefix="/models", tags=["models"])
ModelName = Annotated[str, Path(pattern=SLUG_PATTERN, description="catalogue name of the model")]


@router.get("", response_model=ModelList, responses=responses(401, 403, 422))
def list_models(session: SessionDep, page: PageDep) -> ModelList:
    """All models, by name."""
    rows, count = page_by_name(session, Model, page)
    return ModelList(data=[ModelPublic.model_validate(m) for m in rows], count=count)


@router.get("/{name}", response_model=ModelPublic, responses=responses(401, 403, 404, 422))
def get_one(name: ModelName, session: SessionDep) -> ModelPublic:
    return ModelPublic.model_validate(get_model(session, name))


@router.post(
    "",
    response_model=ModelPublic,
    status_code=status.HTTP_201_CREATED,
    dependencies=[CanTrigger],
    responses=responses(400, 401, 403, 409, 422),
)
def create_model(body: ModelCreate, session: SessionDep) -> ModelPublic:
    """Register a model (needs the right to trigger eval_run)."""
    check_model(body)  # 422 on a registry name VLMEvalKit does not know, with the closest names
    model = insert_named(session, Model(**model_columns(session, body.model_dump())), "model")
    write_choices(session)  # the trigger forms offer it after the next DAG parse
    return ModelPublic.model_validate(model)


@router.patch(
    "/{name}",
    response_model=ModelPublic,
    dependencies=[CanTrigger],
    responses=responses(400, 401, 403, 404, 422),
)
def update_model(name: ModelName, body: ModelUpdate, session: SessionDep) -> ModelPublic:
    """Change what does not change results: the suite for checkpoints (null: none), `api_nproc`."""
    model = get_model(session, name)
    for key, value in model_columns(session, body.model_dump(exclude_unset=True)).items():
        setattr(model, key, value)
    session.flush()
    session.refresh(model)
    return ModelPublic.model_validate(model)
