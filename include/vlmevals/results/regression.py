"""Regression flags: a completed nightly run against the previous completed run of the same (task, model).

A method is a function `(run, baseline, task, session) -> Verdict | None`; `METHODS` is tried in order and the
first verdict wins, so a paired test on per-sample results (eval_samples) can be put in front of the default
absolute threshold with `register_method(..., first=True)` and return None when either run lacks samples.

The absolute method compares primary metrics on the metric's own scale: a drop larger than the task's
`regression_tolerance` (direction from `higher_is_better`) is a regression. The verdict is stored on the run
(`regression`, `regression_detail`, `baseline_run_id`) and logged; `notify()` fires an optional Airflow notifier.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from vlmevals.db.engine import session_scope
from vlmevals.db.models import EvalRun, Task

log = logging.getLogger(__name__)
CHECKED_SOURCES = ("schedule",)  # nightly runs; manual runs are compared on request (check_run(force=True))
NOTIFIER_ENV = "EVALS_REGRESSION_NOTIFIER"
NOTIFIER_KWARGS_ENV = "EVALS_REGRESSION_NOTIFIER_KWARGS"


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


def paired(run: EvalRun, baseline: EvalRun, task: Task, session: Session) -> Verdict | None:
    """Paired bootstrap (+ exact McNemar) on per-sample results; None when either run has none."""
    from vlmevals.results.compare import regression_verdict  # numpy/scipy only when a check runs

    return regression_verdict(run, baseline, task, session)  # type: ignore[no-any-return]


METHODS: list[tuple[str, Method]] = [("paired", paired), ("absolute_threshold", absolute_threshold)]


def register_method(name: str, method: Method, *, first: bool = True) -> None:
    """Plug in a method (e.g. a paired bootstrap when both runs have eval_samples); it returns None to pass."""
    global METHODS
    METHODS = [(n, m) for n, m in METHODS if n != name]
    METHODS.insert(0, (name, method)) if first else METHODS.append((name, method))


def previous_completed(session: Session, run: EvalRun) -> EvalRun | None:
    """The pair's last completed run finished before this one (the baseline)."""
    cond = [
        EvalRun.task_id == run.task_id,
        EvalRun.model_id == run.model_id,
        EvalRun.status == "completed",
        EvalRun.id != run.id,
        EvalRun.primary_metric.isnot(None),
    ]
    if run.finished_at is not None:
        cond.append(
            (EvalRun.finished_at < run.finished_at) | ((EvalRun.finished_at == run.finished_at) & (EvalRun.id < run.id))
        )
    return session.scalar(
        select(EvalRun).where(*cond).order_by(EvalRun.finished_at.desc().nulls_last(), EvalRun.id.desc()).limit(1)
    )


def check_run(engine: Engine | None, run_id: int, *, force: bool = False) -> Verdict | None:
    """Compare a completed run with its baseline, store and log the verdict. Only nightly runs unless `force`."""
    with session_scope(engine) as s:
        run = s.get(EvalRun, run_id)
        if run is None or run.status != "completed" or (run.triggered_by not in CHECKED_SOURCES and not force):
            return None
        task = run.task
        baseline = previous_completed(s, run)
        if baseline is None:
            log.info(
                "regression check of eval run %s (%s x %s): no earlier completed run to compare with",
                run.id,
                task.name,
                run.model.name,
            )
            return None
        verdict = None
        for _, method in METHODS:
            verdict = method(run, baseline, task, s)
            if verdict is not None:
                break
        if verdict is None:
            return None
        s.execute(
            update(EvalRun)
            .where(EvalRun.id == run.id)
            .values(regression=verdict.regression, regression_detail=verdict.detail(), baseline_run_id=baseline.id)
        )
        label = f"eval run {run.id} ({task.name} x {run.model.name})"
        if verdict.regression:
            log.warning(
                "REGRESSION: %s scored %s, %s than run %s (%s); delta %+.4g exceeds the tolerance %s [%s]",
                label,
                verdict.metric,
                "lower" if task.higher_is_better else "higher",
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
        return verdict


def load_notifier() -> Any | None:
    """The notifier named by EVALS_REGRESSION_NOTIFIER (`pkg.module.Class` or `pkg.module:attr`): a class is
    instantiated with the JSON kwargs in EVALS_REGRESSION_NOTIFIER_KWARGS (e.g. an Airflow BaseNotifier such as
    SlackNotifier), anything else is used as is. Called like any Airflow callback: `notifier(context)`."""
    path = os.environ.get(NOTIFIER_ENV, "").strip()
    if not path:
        return None
    mod_name, _, attr = path.partition(":") if ":" in path else path.rpartition(".")
    obj = getattr(importlib.import_module(mod_name), attr)
    if isinstance(obj, type):
        kwargs = json.loads(os.environ.get(NOTIFIER_KWARGS_ENV, "") or "{}")
        obj = obj(**kwargs)
    return obj


def notify(engine: Engine | None, run_id: int | None, context: dict[str, Any]) -> bool:
    """ingest_metrics' success callback: fire the configured notifier if the run was flagged. Never raises."""
    if run_id is None:
        return False
    try:
        with session_scope(engine) as s:
            run = s.get(EvalRun, run_id)
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
