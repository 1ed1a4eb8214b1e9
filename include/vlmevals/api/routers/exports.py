"""The export outbox as the operator sees it: what reached the trackers, what waits, what failed and why.

Read-only: any authenticated user (viewers included) may look; re-queuing is `vlmevals exports retry`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from vlmevals.api.deps import PageDep, SessionDep
from vlmevals.api.errors import responses
from vlmevals.exports.outbox import ExportList, list_exports

router = APIRouter(prefix="/exports", tags=["exports"])

ExportState = Literal["pending", "delivered", "failed"]


@router.get("", response_model=ExportList, responses=responses(401, 403, 422))
def get_exports(
    session: SessionDep,
    page: PageDep,
    state: Annotated[ExportState | None, Query(description="only rows in this state")] = None,
    run_id: Annotated[int | None, Query(ge=1, le=2**63 - 1, description="only this eval run's rows")] = None,
) -> ExportList:
    """Outbox rows newest first, with attempts, last error and the tracker reference (MLflow run id, event
    file); `states` counts the whole outbox by state."""
    return list_exports(session, state=state, run_id=run_id, limit=page.limit, offset=page.offset)
