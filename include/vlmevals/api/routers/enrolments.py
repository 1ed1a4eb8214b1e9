"""Enrolments in the nightly re-evaluation: list, enrol (a pair, a task or a model), unenrol.

Reads need an authenticated user (the app's global dependency); writes need the right to trigger eval_run,
like every other write of the evals API.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response, status

from vlmevals.api.deps import CanTrigger, SessionDep, UserDep, user_name
from vlmevals.api.errors import responses
from vlmevals.api.params import query_object
from vlmevals.api.schemas.envelopes import EnrolmentList, Unenrolled
from vlmevals.catalogue.enrolments import enrol, list_enrolments, public, unenrol
from vlmevals.catalogue.schemas.tasks_models import EnrolmentCreate, EnrolmentPair, EnrolmentPublic
from vlmevals.nightly.planning import resolve_pairs

router = APIRouter(prefix="/enrolments", tags=["nightly"])


@router.get("", response_model=EnrolmentList, responses=responses(401, 403))
def get_enrolments(session: SessionDep) -> EnrolmentList:
    """Every enrolment, and the (task, model) pairs the next nightly run covers."""
    rows = list_enrolments(session)
    pairs = [EnrolmentPair(task=t.name, model=m.name) for t, m in resolve_pairs(session)]
    return EnrolmentList(data=rows, count=len(rows), pairs=pairs)


@router.post(
    "",
    response_model=EnrolmentPublic,
    dependencies=[CanTrigger],
    responses={**responses(400, 401, 403, 404, 422), 201: {"description": "enrolled"}},
)
def post_enrolment(body: EnrolmentCreate, session: SessionDep, user: UserDep, response: Response) -> EnrolmentPublic:
    """Enrol a pair (`task` and `model`), a whole task (`task` only), a whole model (`model` only), or a suite
    (`suite`, with or without `model`, never with `task`); 201 when created or re-enabled, 200 when it was
    already enrolled."""
    row, changed = enrol(session, body.task, body.model, user=user_name(user), suite=body.suite)
    response.status_code = status.HTTP_201_CREATED if changed else status.HTTP_200_OK
    return public(session, row)


parse_target, TARGET_DOC = query_object(
    EnrolmentCreate, "target", "`task`, `model` or both (`?task=t&model=m`), or `suite` with or without `model`"
)


@router.delete(
    "",
    response_model=Unenrolled,
    dependencies=[CanTrigger],
    responses=responses(401, 403, 404, 422),
    openapi_extra=TARGET_DOC,
)
def delete_enrolment(
    session: SessionDep, user: UserDep, target: Annotated[EnrolmentCreate, Depends(parse_target)]
) -> Unenrolled:
    """Unenrol a pair, a task, a model or a suite. A pair whose task, model or suite stays enrolled is stored as an
    exclusion."""
    return Unenrolled(detail=unenrol(session, target.task, target.model, user=user_name(user), suite=target.suite))
