"""Compare two runs of one task: paired difference with its 95 % CI (paired bootstrap; exact McNemar for
accuracies), per-category deltas and the samples that flipped. Pick two runs, or two models (each model's
newest completed run with per-sample results)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.config import JsonDict

from vlmevals.api.deps import SessionDep
from vlmevals.api.errors import responses
from vlmevals.api.params import query_object
from vlmevals.catalogue.store import get_task
from vlmevals.core.errors import InvalidRequestError
from vlmevals.db.models import SLUG_PATTERN
from vlmevals.results.compare import compare_runs
from vlmevals.results.leaderboard import latest_with_samples
from vlmevals.results.schemas.samples_compare import Comparison
from vlmevals.runs.lifecycle import get_run

router = APIRouter(prefix="/tasks/{task_name}/compare", tags=["compare"])
TaskName = Annotated[str, Path(pattern=SLUG_PATTERN, description="catalogue name of the task")]
RunQ = Annotated[int | None, Field(default=None, ge=1, le=2**63 - 1)]
ModelQ = Annotated[str | None, Field(default=None, pattern=SLUG_PATTERN)]
_ONE_PER_SIDE: JsonDict = {
    "allOf": [{"oneOf": [{"required": [f"run_{s}"]}, {"required": [f"model_{s}"]}]} for s in "ab"]
}


class ComparePick(BaseModel):
    """The two sides: `run_a` or `model_a` (exactly one), and `run_b` or `model_b` (exactly one)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_ONE_PER_SIDE)
    run_a: RunQ
    run_b: RunQ
    model_a: ModelQ
    model_b: ModelQ
    max_flips: int = Field(default=200, ge=0, le=5000, description="flipped samples listed per direction")

    @model_validator(mode="after")
    def _one_per_side(self) -> ComparePick:
        for side, run_id, model in (("a", self.run_a, self.model_a), ("b", self.run_b, self.model_b)):
            if (run_id is None) == (model is None):
                raise ValueError(
                    f"give exactly one of run_{side} or model_{side}, e.g. ?run_a=12&run_b=15 or ?model_a=m1&model_b=m2"
                )
        return self


parse_pick, PICK_DOC = query_object(ComparePick, "pick", "`run_a` or `model_a`, `run_b` or `model_b`, `max_flips`")


@router.get("", response_model=Comparison, responses=responses(401, 403, 404, 422), openapi_extra=PICK_DOC)
def compare_two(
    task_name: TaskName, session: SessionDep, pick: Annotated[ComparePick, Depends(parse_pick)]
) -> Comparison:
    """Run b against run a (b - a). Give `run_a` and `run_b`, or `model_a` and `model_b` (a run and a model mix).

    Only samples scored in both runs and failed in neither are paired; `samples` says how many were left out.
    """
    task = get_task(session, task_name)
    ids = []
    for run_id, model in ((pick.run_a, pick.model_a), (pick.run_b, pick.model_b)):
        ids.append(run_id if run_id is not None else latest_with_samples(session, task, str(model)).id)
    for rid in ids:
        run = get_run(session, rid)
        if run.task_id != task.id:
            raise InvalidRequestError(f"run {rid} is on task {run.task.name!r}, not {task_name!r}")
    return compare_runs(session, ids[0], ids[1], max_flips=pick.max_flips)
