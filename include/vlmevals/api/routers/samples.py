"""Per-sample results of a run: a page of samples (filter by category and right/wrong/failed) and each
sample's image, read from the dataset TSV VLMEvalKit ran on."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from vlmevals.api.deps import PageDep, SessionDep
from vlmevals.api.errors import responses
from vlmevals.core.settings import get_settings
from vlmevals.results.samples import images
from vlmevals.results.samples.store import categories, list_samples, outcome_of
from vlmevals.results.schemas.samples_compare import Outcome, SampleList, SampleOut
from vlmevals.runs.lifecycle import get_run

router = APIRouter(prefix="/runs/{run_id}/samples", tags=["samples"])
RunId = Annotated[int, Path(ge=1, le=2**63 - 1, description="eval run id")]


@router.get("", response_model=SampleList, responses=responses(401, 403, 404, 422))
def list_run_samples(
    request: Request,
    run_id: RunId,
    session: SessionDep,
    page: PageDep,
    category: Annotated[
        str | None, Query(max_length=256, pattern=r"^[^\x00]*$", description="only this category (text, no NUL)")
    ] = None,
    outcome: Annotated[Outcome, Query(description="right, wrong (below full marks, not failed), failed")] = "all",
) -> SampleList:
    """A page of the run's samples in index order, with prediction, answer and score.

    Failed samples (API/judge errors) are counted apart from wrong ones: `outcome=failed` lists them.
    """
    run = get_run(session, run_id)
    rows, count = list_samples(
        session, run_id, category=category, outcome=outcome, offset=page.offset, limit=page.limit
    )
    base = str(request.url.path).rstrip("/")
    data = [
        SampleOut(
            sample_index=r.sample_index,
            category=r.category,
            question=r.question,
            answer=r.answer,
            prediction=r.prediction,
            score=r.score,
            failed=r.failed,
            outcome=outcome_of(r.score, r.failed),
            extra=r.extra,
            image=f"{base}/{r.sample_index}/image",
        )
        for r in rows
    ]
    return SampleList(
        run_id=run_id,
        data=data,
        count=count,
        total=run.samples_total,
        failed=run.samples_failed,
        categories=categories(session, run_id),
        summary=(run.metrics or {}).get("samples"),
    )


@router.get(
    "/{sample_index}/image",
    response_class=Response,
    responses={
        200: {"content": {"image/png": {}, "image/jpeg": {}}, "description": "the image bytes"},
        **responses(401, 403, 404, 422),
    },
)
def sample_image(
    run_id: RunId,
    sample_index: Annotated[str, Path(max_length=128, description="the sample's index in the dataset")],
    session: SessionDep,
    n: Annotated[int, Query(ge=0, le=64, description="which image of a multi-image sample")] = 0,
) -> Response:
    """The sample's image from the dataset TSV in LMUData (base64 `image` column), served as-is."""
    run = get_run(session, run_id)
    tsv = get_settings().lmu_data / f"{run.task.vlmeval_data}.tsv"
    data, mime = images.sample_image(tsv, sample_index, n)
    return Response(content=data, media_type=mime, headers={"Cache-Control": "private, max-age=3600"})
