"""Compare two runs of one task: paired difference with its 95 % CI (paired bootstrap; exact McNemar for
accuracies), per-category deltas and the samples that flipped. Pick two runs, or two models (each model's
newest completed run with per-sample results)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from vlmevals.api.deps import SessionDep
from vlmevals.api.errors import responses
from vlmevals.catalogue.store import get_task
from vlmevals.core.errors import InvalidRequestError
from vlmevals.db.models import SLUG_PATTERN
from vlmevals.results.compare import compare_runs
from vlmevals.results.leaderboard import latest_with_samples
from vlmevals.results.schemas import Comparison
from vlmevals.runs.lifecycle import get_run

router = APIRouter(prefix="/tasks/{task_name}/compare", tags=["compare"])
TaskName = Annotated[str, Path(pattern=SLUG_PATTERN, description="catalogue name of the task")]
RunQ = Annotated[int | None, Query(ge=1, le=2**63 - 1)]
ModelQ = Annotated[str | None, Query(pattern=SLUG_PATTERN)]


@router.get("", response_model=Comparison, responses=responses(401, 403, 404, 422))
def compare_two(
    task_name: TaskName,
    session: SessionDep,
    run_a: RunQ = None,
    run_b: RunQ = None,
    model_a: ModelQ = None,
    model_b: ModelQ = None,
    max_flips: Annotated[int, Query(ge=0, le=5000, description="flipped samples listed per direction")] = 200,
) -> Comparison:
    """Run b against run a (b - a). Give `run_a` and `run_b`, or `model_a` and `model_b` (a run and a model mix).

    Only samples scored in both runs and failed in neither are paired; `samples` says how many were left out.
    """
    task = get_task(session, task_name)
    ids = []
    for side, run_id, model in (("a", run_a, model_a), ("b", run_b, model_b)):
        if run_id is not None and model is None:
            ids.append(run_id)
        elif run_id is None and model is not None:
            ids.append(latest_with_samples(session, task, model).id)
        else:
            raise InvalidRequestError(
                f"give exactly one of run_{side} or model_{side}, e.g. ?run_a=12&run_b=15 or ?model_a=m1&model_b=m2"
            )
    for rid in ids:
        run = get_run(session, rid)
        if run.task_id != task.id:
            raise InvalidRequestError(f"run {rid} is on task {run.task.name!r}, not {task_name!r}")
    return compare_runs(session, ids[0], ids[1], max_flips=max_flips)
