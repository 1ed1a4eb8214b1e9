"""Typed dependencies of the evals API: our DB session, the Airflow user, permission guards, paging.

Authentication and authorisation are Airflow's own (Bearer JWT or the UI's `_token` cookie, checked by the
configured auth manager), so the evals API has exactly the users and roles the Airflow UI has.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Query
from pydantic import BaseModel
from sqlalchemy.orm import Session

from vlmevals.airflow.auth import BaseUser, DagAccessEntity, GetUserDep, may_trigger, requires_access_dag
from vlmevals.catalogue.store import get_model
from vlmevals.core.constants import EVAL_RUN_DAG_ID
from vlmevals.core.errors import InvalidRequestError, NotFoundError
from vlmevals.db.engine import get_engine, session_scope

MAX_PAGE = 1000


def get_session() -> Iterator[Session]:
    """One transaction per request on our database (not Airflow's metadata DB)."""
    with session_scope(get_engine()) as s:
        yield s


# scope="function": commit (or roll back) before the response goes out, so a 201 means it is stored
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
UserDep = GetUserDep
# writes (create task/model, trigger, cancel) need the right to trigger eval_run, checked by Airflow's auth
# manager; not a custom-view check: SimpleAuthManager's ignores the HTTP method, and FAB's wants a permission on
# our view that none of its roles has. FAB grants this one to User, Op and Admin (can_create on DAG Runs, can_edit
# on DAGs), not to Viewer
requires_trigger = requires_access_dag("POST", DagAccessEntity.RUN, param_dag_id=EVAL_RUN_DAG_ID)
CanTrigger = Depends(requires_trigger)


def user_name(user: BaseUser) -> str:
    return user.get_name()


def can_trigger(user: BaseUser) -> bool:
    """Whether `user` may trigger eval_run (what the page uses to show or hide its trigger button)."""
    return may_trigger(user, EVAL_RUN_DAG_ID)


class Paging(BaseModel):
    """A listing's window, from the `limit` and `offset` query parameters."""

    limit: int
    offset: int


async def paging(
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="page size")] = 50,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1, description="rows to skip")] = 0,
) -> Paging:
    """Async on purpose: a sync dependency is run through the threadpool, a hop per request for nothing."""
    return Paging(limit=limit, offset=offset)


PageDep = Annotated[Paging, Depends(paging)]


def body_model_known(session: Session, model_name: str) -> None:
    """A model named in a request body: unknown answers 422, as every reference in a body does (404 is for the
    URL's own resource, which exists); the caller resolves that one first."""
    try:
        get_model(session, model_name)
    except NotFoundError as err:
        raise InvalidRequestError(str(err)) from None
