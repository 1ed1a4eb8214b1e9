"""Compare two runs of the same task sample by sample: the metric difference with a paired interval, per-category
deltas and the samples that flipped.

Only samples present in both runs and failed in neither are paired: a sample the API or judge failed on says
nothing about the model, and VLMEvalKit would count it wrong in one run but not the other. How many were left
out is reported. The difference is b - a on the task's scale, so "b improved" means a positive delta when
higher is better.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from sqlalchemy.orm import Session

from vlmevals.core.errors import InvalidRequestError
from vlmevals.db.models import EvalRun
from vlmevals.results import stats
from vlmevals.results.fingerprint import comparability_breaks
from vlmevals.results.samples.store import FULL_MARKS, ScoredSample, scores_of
from vlmevals.results.schemas.samples_compare import CategoryDelta, ComparedRun, Comparison, Flip, Flips, SampleCounts
from vlmevals.runs.lifecycle import get_run

MAX_FLIPS = 500


class PairedSample(NamedTuple):
    """A sample scored in both runs and failed in neither."""

    sample_index: str
    score_a: float
    score_b: float
    category_a: str | None
    category_b: str | None


def compare_runs(
    session: Session, run_a_id: int, run_b_id: int, *, seed: int = stats.DEFAULT_SEED, max_flips: int = MAX_FLIPS
) -> Comparison:
    """The paired comparison of run b against run a (see the module docstring)."""
    a, b = get_run(session, run_a_id), get_run(session, run_b_id)
    if a.task_id != b.task_id:
        raise InvalidRequestError(
            f"runs {a.id} ({a.task.name}) and {b.id} ({b.task.name}) are on different tasks;"
            " only runs of the same task can be compared"
        )
    counts, paired = _pair(_scores(session, a), _scores(session, b))
    if not paired:
        raise InvalidRequestError(
            f"runs {a.id} and {b.id} share no sample scored in both (shared "
            f"{counts.shared}, failed in either {counts.excluded_failed}); nothing to compare"
        )
    scale = float(a.task.metric_scale or 1.0)
    xa = np.array([p.score_a for p in paired], dtype=float)
    xb = np.array([p.score_b for p in paired], dtype=float)
    diff = stats.paired_bootstrap(xa, xb, seed=seed).scaled(scale)
    binary = stats.is_binary(xa) and stats.is_binary(xb)
    return Comparison(
        task=a.task.name,
        metric_scale=scale,
        higher_is_better=a.task.higher_is_better,
        run_a=_compared_run(a),
        run_b=_compared_run(b),
        samples=counts,
        mean_a=float(xa.mean()) * scale,
        mean_b=float(xb.mean()) * scale,
        difference=diff,
        mcnemar=stats.mcnemar_from_scores(xa, xb) if binary else None,
        significant=bool(diff.low > 0 or diff.high < 0),
        categories=_category_deltas(paired, scale),
        flips=_flips(paired, max_flips),
        comparability=(
            comparability_breaks(a.fingerprint, b.fingerprint)
            if a.fingerprint and b.fingerprint
            else ["fingerprint missing on one run"]
        ),
    )


def _scores(session: Session, run: EvalRun) -> dict[str, ScoredSample]:
    got = scores_of(session, run.id)
    if not got:
        raise InvalidRequestError(
            f"run {run.id} has no per-sample results (status {run.status}); only completed runs ingested "
            "with per-sample files can be compared. Re-run it, or compare another run"
        )
    return got


def _pair(sa: dict[str, ScoredSample], sb: dict[str, ScoredSample]) -> tuple[SampleCounts, list[PairedSample]]:
    """The sample counts and the paired samples (in numeric index order where possible)."""
    shared = sorted(set(sa) & set(sb), key=lambda k: (len(k), k))
    paired = [
        PairedSample(k, a.score, b.score, a.category, b.category)
        for k in shared
        if not (a := sa[k]).failed and not (b := sb[k]).failed and a.score is not None and b.score is not None
    ]
    counts = SampleCounts(
        a=len(sa),
        b=len(sb),
        shared=len(shared),
        paired=len(paired),
        excluded_failed=sum(1 for k in shared if sa[k].failed or sb[k].failed),
        only_a=len(set(sa) - set(sb)),
        only_b=len(set(sb) - set(sa)),
    )
    return counts, paired


def _category_deltas(paired: list[PairedSample], scale: float) -> list[CategoryDelta]:
    """Per category (b's, else a's): the two means and the mean difference, on the task's scale."""
    cats: dict[str, list[PairedSample]] = {}
    for p in paired:
        cats.setdefault(p.category_b or p.category_a or "", []).append(p)
    return [
        CategoryDelta(
            category=c,
            n=len(ps),
            a=scale * float(np.mean([p.score_a for p in ps])),
            b=scale * float(np.mean([p.score_b for p in ps])),
            delta=scale * float(np.mean([p.score_b - p.score_a for p in ps])),
        )
        for c, ps in sorted(cats.items())
    ]


def _flips(paired: list[PairedSample], max_flips: int) -> Flips:
    """Samples right in a and wrong in b, and the other way round (full marks = right)."""
    flips: dict[bool, list[Flip]] = {True: [], False: []}  # True: right to wrong
    for p in paired:
        right_a, right_b = p.score_a >= FULL_MARKS, p.score_b >= FULL_MARKS
        if right_a != right_b:
            flips[right_a].append(
                Flip(sample_index=p.sample_index, category=p.category_b, score_a=p.score_a, score_b=p.score_b)
            )
    r2w, w2r = flips[True], flips[False]
    return Flips(
        right_to_wrong_count=len(r2w),
        wrong_to_right_count=len(w2r),
        right_to_wrong=r2w[:max_flips],
        wrong_to_right=w2r[:max_flips],
        truncated=len(r2w) > max_flips or len(w2r) > max_flips,
    )


def _compared_run(run: EvalRun) -> ComparedRun:
    return ComparedRun(
        id=run.id,
        model_name=run.model.name,
        model_display_name=run.model.display_name,
        status=run.status,
        primary_metric=run.primary_metric,
        ci_low=run.ci_low,
        ci_high=run.ci_high,
        samples_total=run.samples_total,
        samples_failed=run.samples_failed,
        finished_at=run.finished_at.isoformat() if run.finished_at else None,
        fingerprint_hash=run.fingerprint_hash,
    )
