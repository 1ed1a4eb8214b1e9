"""Models of the catalogue."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, status
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from vlmevals.api.deps import CanTrigger, PageDep, SessionDep
from vlmevals.api.errors import responses
from vlmevals.api.schemas import ModelList
from vlmevals.catalogue.names import check_model
from vlmevals.catalogue.schemas import ModelCreate, ModelPublic
from vlmevals.catalogue.store import get_model
from vlmevals.core.errors import ConflictError
from vlmevals.db.models import SLUG_PATTERN, Model

router = APIRouter(prefix="/models", tags=["models"])
ModelName = Annotated[str, Path(pattern=SLUG_PATTERN, description="catalogue name of the model")]


@router.get("", response_model=ModelList, responses=responses(401, 403, 422))
def list_models(session: SessionDep, page: PageDep) -> ModelList:
    """All models, by name."""
    count = session.scalar(select(func.count()).select_from(Model)) or 0
    rows = session.scalars(select(Model).order_by(Model.name).limit(page.limit).offset(page.offset)).all()
    return ModelList(data=[ModelPublic.model_validate(t) for t in rows], count=count)


@router.get("/{name}", response_model=ModelPublic, responses=responses(401, 403, 404, 422))
def get_one(name: ModelName, session: SessionDep) -> ModelPublic:
    return ModelPublic.model_validate(get_model(session, name))


@router.post(
    "",
    response_model=ModelPublic,
    status_code=status.HTTP_201_CREATED,
    dependencies=[CanTrigger],
    responses=responses(401, 403, 409, 422),
)
def create_model(body: ModelCreate, session: SessionDep) -> ModelPublic:
    """Register a model (needs the right to trigger eval_run)."""
    if session.scalar(select(Model.id).where(Model.name == body.name)) is not None:
        raise ConflictError(f"a model named {body.name!r} already exists; pick another name")
    check_model(body)  # 422 on a registry name VLMEvalKit does not know, with the closest names
    model = Model(**body.model_dump())
    session.add(model)
    try:
        session.flush()
    except IntegrityError as err:  # lost a race with a concurrent create
        raise ConflictError(f"a model named {body.name!r} already exists; pick another name") from err
    session.refresh(model)
    return ModelPublic.model_validate(model)
