"""Compare two runs of the same task sample by sample: the metric difference with a paired interval, per-category
deltas and the samples that flipped.

Only samples present in both runs and failed in neither are paired: a sample the API or judge failed on says
nothing about the model, and VLMEvalKit would count it wrong in one run but not the other. How many were left
out is reported. The difference is b - a on the task's scale, so "b improved" means a positive delta when
higher is better.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from vlmevals.core.errors import InvalidRequestError, NotFoundError
from vlmevals.db.models import EvalRun, Model, Task
from vlmevals.results import stats
from vlmevals.results.samples import scores_of

MAX_FLIPS = 500


@dataclass(frozen=True)
class Flip:
    sample_index: str
    category: str | None
    score_a: float
    score_b: float


def _run(session: Session, run_id: int) -> EvalRun:
    run = session.get(EvalRun, run_id)
    if run is None:
        raise NotFoundError(f"no eval run with id {run_id}")
    return run


def latest_with_samples(session: Session, task: Task, model_name: str) -> EvalRun:
    """The model's newest completed run on `task` that has per-sample results."""
    model = session.scalar(select(Model).where(Model.name == model_name))
    if model is None:
        raise NotFoundError(f"no model named {model_name!r}; see GET /api/evals/models")
    run = session.scalar(
        select(EvalRun)
        .where(
            EvalRun.task_id == task.id,
            EvalRun.model_id == model.id,
            EvalRun.status == "completed",
            EvalRun.samples_total > 0,
        )
        .order_by(EvalRun.finished_at.desc(), EvalRun.id.desc())
        .limit(1)
    )
    if run is None:
        raise NotFoundError(
            f"model {model_name!r} has no completed run with per-sample results on task "
            f"{task.name!r}; run it first (POST /api/evals/tasks/{task.name}/runs)"
        )
    return run


def compare_runs(
    session: Session, run_a_id: int, run_b_id: int, *, seed: int = stats.DEFAULT_SEED, max_flips: int = MAX_FLIPS
) -> dict[str, Any]:
    """The paired comparison of run b against run a (see the module docstring)."""
    a, b = _run(session, run_a_id), _run(session, run_b_id)
    if a.task_id != b.task_id:
        raise InvalidRequestError(
            f"runs {a.id} ({a.task.name}) and {b.id} ({b.task.name}) are on different tasks;"
            " only runs of the same task can be compared"
        )
    sa, sb = scores_of(session, a.id), scores_of(session, b.id)
    for run, got in ((a, sa), (b, sb)):
        if not got:
            raise InvalidRequestError(
                f"run {run.id} has no per-sample results (status {run.status}); only completed runs ingested "
                "with per-sample files can be compared. Re-run it, or compare another run"
            )
    task = a.task
    scale = float(task.metric_scale or 1.0)
    shared = sorted(set(sa) & set(sb), key=lambda k: (len(k), k))
    paired = [k for k in shared if not sa[k][1] and not sb[k][1] and sa[k][0] is not None and sb[k][0] is not None]
    failed_either = sum(1 for k in shared if sa[k][1] or sb[k][1])
    out: dict[str, Any] = {
        "task": task.name,
        "metric_scale": scale,
        "higher_is_better": task.higher_is_better,
        "run_a": _run_info(a),
        "run_b": _run_info(b),
        "samples": {
            "a": len(sa),
            "b": len(sb),
            "shared": len(shared),
            "paired": len(paired),
            "excluded_failed": failed_either,
            "only_a": len(set(sa) - set(sb)),
            "only_b": len(set(sb) - set(sa)),
        },
    }
    if not paired:
        raise InvalidRequestError(
            f"runs {a.id} and {b.id} share no sample scored in both (shared "
            f"{len(shared)}, failed in either {failed_either}); nothing to compare"
        )
    xa = np.array([sa[k][0] for k in paired], dtype=float)
    xb = np.array([sb[k][0] for k in paired], dtype=float)
    diff = stats.paired_bootstrap(xa, xb, seed=seed).scaled(scale)
    out["mean_a"], out["mean_b"] = float(xa.mean()) * scale, float(xb.mean()) * scale
    out["difference"] = diff.as_dict()
    binary = stats.is_binary(xa) and stats.is_binary(xb)
    if binary:
        mc = stats.mcnemar_from_scores(xa, xb)
        out["mcnemar"] = {
            "right_to_wrong": mc.right_to_wrong,
            "wrong_to_right": mc.wrong_to_right,
            "p_value": mc.p_value,
            "method": mc.method,
        }
    else:
        out["mcnemar"] = None
    out["significant"] = bool(diff.low > 0 or diff.high < 0)
    cats: dict[str, list[str]] = {}
    for k in paired:
        cats.setdefault(sb[k][2] or sa[k][2] or "", []).append(k)
    out["categories"] = [
        {
            "category": c,
            "n": len(ks),
            "a": scale * float(np.mean([sa[k][0] for k in ks])),
            "b": scale * float(np.mean([sb[k][0] for k in ks])),
            "delta": scale * float(np.mean([sb[k][0] - sa[k][0] for k in ks])),
        }  # type: ignore[operator]
        for c, ks in sorted(cats.items())
    ]
    r2w = [
        Flip(k, sb[k][2], float(sa[k][0]), float(sb[k][0]))  # type: ignore[arg-type]
        for k in paired
        if sa[k][0] >= 1 and sb[k][0] < 1
    ]  # type: ignore[operator]
    w2r = [
        Flip(k, sb[k][2], float(sa[k][0]), float(sb[k][0]))  # type: ignore[arg-type]
        for k in paired
        if sa[k][0] < 1 and sb[k][0] >= 1
    ]  # type: ignore[operator]
    out["flips"] = {
        "right_to_wrong_count": len(r2w),
        "wrong_to_right_count": len(w2r),
        "right_to_wrong": [f.__dict__ for f in r2w[:max_flips]],
        "wrong_to_right": [f.__dict__ for f in w2r[:max_flips]],
        "truncated": len(r2w) > max_flips or len(w2r) > max_flips,
    }
    from vlmevals.results.fingerprint import comparability_breaks

    out["comparability"] = (
        comparability_breaks(a.fingerprint or {}, b.fingerprint or {})
        if a.fingerprint and b.fingerprint
        else ["fingerprint missing on one run"]
    )
    return out


def _run_info(run: EvalRun) -> dict[str, Any]:
    return {
        "id": run.id,
        "model_name": run.model.name,
        "model_display_name": run.model.display_name,
        "status": run.status,
        "primary_metric": run.primary_metric,
        "ci_low": run.ci_low,
        "ci_high": run.ci_high,
        "samples_total": run.samples_total,
        "samples_failed": run.samples_failed,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "fingerprint_hash": run.fingerprint_hash,
    }


def regression_verdict(run: EvalRun, baseline: EvalRun, task: Task, session: Session) -> Any:
    """vlmevals.results.regression method: the paired test, or None (fall through to the absolute threshold) when
    either run lacks per-sample results or they share no scored sample.

    A regression is a drop larger than the task's `regression_tolerance` (metric scale, in the metric's
    direction) whose 95 % paired interval excludes zero: a drop within sampling noise is not flagged.
    """
    from vlmevals.results.regression import Verdict

    if not scores_of(session, baseline.id) or not scores_of(session, run.id):
        return None
    try:
        cmp = compare_runs(session, baseline.id, run.id, max_flips=20)
    except InvalidRequestError:
        return None
    d = cmp["difference"]
    drop = -d["estimate"] if task.higher_is_better else d["estimate"]
    beyond_noise = d["high"] < 0 if task.higher_is_better else d["low"] > 0
    method = "paired_bootstrap" + ("+exact_mcnemar" if cmp["mcnemar"] else "")
    return Verdict(
        regression=bool(drop > task.regression_tolerance + 1e-12 and beyond_noise),
        method=method,
        baseline_run_id=baseline.id,
        metric=run.primary_metric,
        baseline_metric=baseline.primary_metric,
        delta=d["estimate"],
        tolerance=task.regression_tolerance,
        higher_is_better=task.higher_is_better,
        extra={
            "ci_low": d["low"],
            "ci_high": d["high"],
            "paired_samples": cmp["samples"]["paired"],
            "excluded_failed": cmp["samples"]["excluded_failed"],
            "mcnemar_p": cmp["mcnemar"]["p_value"] if cmp["mcnemar"] else None,
            "right_to_wrong": cmp["flips"]["right_to_wrong_count"],
            "wrong_to_right": cmp["flips"]["wrong_to_right_count"],
        },
    )
