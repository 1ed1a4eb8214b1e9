"""Regression flags: a completed nightly run against the previous completed run of the same (task, model), and a
checkpoint's run against the completed run at the previous checkpoint (`kind: checkpoint_drop`), by one rule.
Baselines are full-dataset runs only (results/counted.py), and a limited run (option `limit`, a smoke test) is
not checked: its few samples are a different evaluation from the baseline's.

A method is a function `(run, baseline, task, session) -> Verdict | None`; `METHODS` is tried in order and the
first verdict wins: the paired test on per-sample results (eval_samples, see `regression_verdict`) comes first
and returns None when either run lacks samples, then the absolute threshold. `register_method` plugs in more.

The absolute method compares primary metrics on the metric's own scale: a drop larger than the task's
`regression_tolerance` (direction from `higher_is_better`) is a regression. The verdict is stored on the run
(`regression`, `regression_detail`, `baseline_run_id`) and logged; `notify()` fires an optional Airflow notifier.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from vlmevals.airflow.notifiers import NOTIFIER_ENV, load_notifier
from vlmevals.catalogue.checkpoints import CHECKPOINT_ORDER
from vlmevals.core.errors import InvalidRequestError
from vlmevals.core.vocabulary import RunStatus, TriggeredBy
from vlmevals.db.models import Checkpoint, EvalRun, Task
from vlmevals.results.compare import compare_runs
from vlmevals.results.counted import counted
from vlmevals.results.leaderboard import previous_completed
from vlmevals.results.samples.store import scores_of
from vlmevals.runs.lifecycle import note_late_verdict, record_regression

log = logging.getLogger(__name__)
CHECKED_SOURCES = (TriggeredBy.NIGHTLY,)  # nightly runs; manual runs are compared on request (check_run(force=True))


@dataclass
class Verdict:
    regression: bool
    method: str
    baseline_run_id: int
    metric: float | None
    baseline_metric: float | None
    delta: float | None  # run - baseline, on the metric's scale
    tolerance: float
    higher_is_better: bool
    extra: dict[str, Any] = field(default_factory=dict)

    def detail(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(d.pop("extra"))
        return d


Method = Callable[[EvalRun, EvalRun, Task, Session], "Verdict | None"]


def absolute_threshold(run: EvalRun, baseline: EvalRun, task: Task, session: Session) -> Verdict | None:
    """Drop of the primary metric beyond the task's tolerance (absolute, on the metric's scale)."""
    if run.primary_metric is None or baseline.primary_metric is None:
        return None
    delta = run.primary_metric - baseline.primary_metric
    drop = -delta if task.higher_is_better else delta
    return Verdict(
        regression=drop > task.regression_tolerance + 1e-12,
        method="absolute_threshold",
        baseline_run_id=baseline.id,
        metric=run.primary_metric,
        baseline_metric=baseline.primary_metric,
        delta=delta,
        tolerance=task.regression_tolerance,
        higher_is_better=task.higher_is_better,
    )


def regression_verdict(run: EvalRun, baseline: EvalRun, task: Task, session: Session) -> Verdict | None:
    """The paired test on per-sample results, or None (fall through to the absolute threshold) when either run
    lacks per-sample results or they share no scored sample.

    A regression is a drop larger than the task's `regression_tolerance` (metric scale, in the metric's
    direction) whose 95 % paired interval excludes zero: a drop within sampling noise is not flagged.
    """
    if not scores_of(session, baseline.id) or not scores_of(session, run.id):
        return None
    try:
        cmp = compare_runs(session, baseline.id, run.id, max_flips=20)
    except InvalidRequestError:
        return None
    d = cmp.difference
    drop = -d.estimate if task.higher_is_better else d.estimate
    beyond_noise = d.high < 0 if task.higher_is_better else d.low > 0
    return Verdict(
        regression=bool(drop > task.regression_tolerance + 1e-12 and beyond_noise),
        method="paired_bootstrap" + ("+exact_mcnemar" if cmp.mcnemar else ""),
        baseline_run_id=baseline.id,
        metric=run.primary_metric,
        baseline_metric=baseline.primary_metric,
        delta=d.estimate,
        tolerance=task.regression_tolerance,
        higher_is_better=task.higher_is_better,
        extra={
            "ci_low": d.low,
            "ci_high": d.high,
            "paired_samples": cmp.samples.paired,
            "excluded_failed": cmp.samples.excluded_failed,
            "mcnemar_p": cmp.mcnemar.p_value if cmp.mcnemar else None,
            "right_to_wrong": cmp.flips.right_to_wrong_count,
            "wrong_to_right": cmp.flips.wrong_to_right_count,
        },
    )


METHODS: list[tuple[str, Method]] = [("paired", regression_verdict), ("absolute_threshold", absolute_threshold)]


def register_method(name: str, method: Method, *, first: bool = True) -> None:
    """Plug in a method (e.g. a paired bootstrap when both runs have eval_samples); it returns None to pass."""
    global METHODS
    METHODS = [(n, m) for n, m in METHODS if n != name]
    METHODS.insert(0, (name, method)) if first else METHODS.append((name, method))


def check_run(session: Session, run_id: int, *, force: bool = False) -> Verdict | None:
    """Compare a completed run with its baseline, store and log the verdict (with an event: it comes after the
    completion). Nightly runs (or any with `force`) against the pair's previous completed run; a checkpoint's
    run against the previous checkpoint's."""
    verdict = check_in_session(session, run_id, force=force)
    if verdict is not None:
        found = "a regression" if verdict.regression else "no regression"
        note_late_verdict(session, run_id, f"{verdict.method} check against run {verdict.baseline_run_id}: {found}")
    return verdict


def check_in_session(session: Session, run_id: int, *, force: bool = False) -> Verdict | None:
    """`check_run` inside the caller's transaction: a run completed and its verdict stored in one commit."""
    run = session.get(EvalRun, run_id)
    if run is None or run.status != RunStatus.COMPLETED:
        return None
    if run.sample_limit is not None:
        log.info("regression check of eval run %s: skipped, it evaluated only %s samples", run.id, run.sample_limit)
        return None
    if run.checkpoint_id is not None:
        return _check_checkpoint(session, run)
    if run.triggered_by not in CHECKED_SOURCES and not force:
        return None
    baseline = previous_completed(session, run)
    if baseline is None:
        log.info(
            "regression check of eval run %s (%s x %s): no earlier completed run to compare with",
            run.id,
            run.task.name,
            run.model.name,
        )
        return None
    return _store(session, run, baseline, {})


def _store(session: Session, run: EvalRun, baseline: EvalRun, more: dict[str, Any]) -> Verdict | None:
    """The first method's verdict, stored on the run (its detail extended by `more`) and logged."""
    verdict = _first_verdict(run, baseline, session)
    if verdict is None:
        return None
    engines = [(r.fingerprint or {}).get("serving", {}).get("engine") for r in (baseline, run)]
    if engines[0] != engines[1] and verdict.regression:  # another engine answers differently: drift
        verdict = replace(verdict, regression=False)
        more = {
            **more,
            "drift": f"inference engine changed: {engines[0] or 'in-process'} -> {engines[1] or 'in-process'}",
        }
    record_regression(
        session, run.id, regression=verdict.regression, detail={**verdict.detail(), **more}, baseline_run_id=baseline.id
    )
    _log_verdict(run, baseline, verdict)
    return verdict


def _ref(cp: Checkpoint) -> dict[str, Any]:
    return {"id": cp.id, "step": cp.step, "label": cp.label}


def previous_checkpoint_run(session: Session, run: EvalRun) -> tuple[EvalRun, Checkpoint] | None:
    """The counted (full-dataset) run of the same (task, model) at the nearest earlier checkpoint that has one
    (checkpoints in their order: by step, label-only ones after, then by registration time)."""
    order = list(
        session.scalars(select(Checkpoint.id).where(Checkpoint.model_id == run.model_id).order_by(*CHECKPOINT_ORDER))
    )
    earlier = order[: order.index(run.checkpoint_id)] if run.checkpoint_id in order else []
    if not earlier:
        return None
    candidates = session.scalars(
        select(EvalRun)
        .where(EvalRun.task_id == run.task_id, EvalRun.model_id == run.model_id, EvalRun.checkpoint_id.in_(earlier))
        .where(*counted(EvalRun))
        .order_by(EvalRun.finished_at.desc().nulls_last(), EvalRun.id.desc())
    ).all()
    best = max(candidates, key=lambda r: earlier.index(r.checkpoint_id or 0), default=None)
    return (best, session.get_one(Checkpoint, best.checkpoint_id)) if best is not None else None


def _check_checkpoint(session: Session, run: EvalRun) -> Verdict | None:
    """A drop between consecutive checkpoints: the nightly rule (METHODS, the task's tolerance), flagged the
    same way, with `kind: checkpoint_drop` and both checkpoints in the detail."""
    got = previous_checkpoint_run(session, run)
    if got is None or run.checkpoint is None:
        log.info("checkpoint run %s: no earlier checkpoint with a completed run on %s", run.id, run.task.name)
        return None
    baseline, prev = got
    more = {"kind": "checkpoint_drop", "checkpoint": _ref(run.checkpoint), "previous_checkpoint": _ref(prev)}
    return _store(session, run, baseline, more)


def _first_verdict(run: EvalRun, baseline: EvalRun, session: Session) -> Verdict | None:
    """The verdict of the first method in METHODS that gives one."""
    for _, method in METHODS:
        verdict = method(run, baseline, run.task, session)
        if verdict is not None:
            return verdict
    return None


def _log_verdict(run: EvalRun, baseline: EvalRun, verdict: Verdict) -> None:
    label = f"eval run {run.id} ({run.task.name} x {run.model.name})"
    if verdict.regression:
        log.warning(
            "REGRESSION: %s scored %s, %s than run %s (%s); delta %+.4g exceeds the tolerance %s [%s]",
            label,
            verdict.metric,
            "lower" if run.task.higher_is_better else "higher",
            baseline.id,
            verdict.baseline_metric,
            verdict.delta or 0.0,
            verdict.tolerance,
            verdict.method,
        )
    else:
        log.info(
            "no regression: %s scored %s against %s in run %s (delta %+.4g, tolerance %s) [%s]",
            label,
            verdict.metric,
            verdict.baseline_metric,
            baseline.id,
            verdict.delta or 0.0,
            verdict.tolerance,
            verdict.method,
        )


def notify(session: Session, run_id: int | None, context: dict[str, Any]) -> bool:
    """ingest_metrics' success callback: fire the configured notifier if the run was flagged. Never raises."""
    if run_id is None:
        return False
    try:
        run = session.get(EvalRun, run_id)
        if run is None or not run.regression:
            return False
        info = {
            "eval_run_id": run.id,
            "task": run.task.name,
            "model": run.model.name,
            **(run.regression_detail or {}),
        }
        notifier = load_notifier()
        if notifier is None:
            log.info("regression in eval run %s; no notifier configured (%s)", run_id, NOTIFIER_ENV)
            return False
        notifier({**context, "regression": info})
        log.info("regression notifier %s fired for eval run %s", os.environ.get(NOTIFIER_ENV), run_id)
        return True
    except Exception:  # a broken notifier must not turn a finished evaluation into a failure
        log.exception("regression notifier failed for eval run %s", run_id)
        return False
