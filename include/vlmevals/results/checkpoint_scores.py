"""A model's checkpoints scored on a suite: what the page draws as score against step.

Rules (the README states them too):
- checkpoints are in training order: by step; those with only a label follow, by created_at;
- a cell is the latest completed, scored, full-dataset run (results/counted.py: a smoke test with the option
  `limit` is not a point of the curve) of (task, model, checkpoint), normalised to 0-100 with
  `overall.normalise` (the task's scale and direction); `drop` is the run's own flag, set when it was scored
  against the previous checkpoint's run (`regression` with `regression_detail.kind == "checkpoint_drop"`);
- the average is the overall board's: the weighted mean of the covered cells, `coverage` counts them;
- `average_drop`: against the previous checkpoint in that order that has results, both averaged over the tasks
  they both cover, the average fell by more than the suite's tolerance, the mean over its tasks of each task's
  `regression_tolerance` normalised to points (`100 * tolerance / metric_scale`);
- `best`: the highest average among the checkpoints that cover every task; ties go to the earliest.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from vlmevals.catalogue.store import get_model
from vlmevals.catalogue.suites import get_suite
from vlmevals.core.errors import InvalidRequestError
from vlmevals.db.models import BoardEntry, Checkpoint, EvalRun, Model, Suite
from vlmevals.results.overall import normalise
from vlmevals.results.schemas.checkpoints import (
    CheckpointCell,
    CheckpointedModel,
    CheckpointScores,
    CheckpointScoresRow,
    CheckpointTask,
)
from vlmevals.runs import judge_usage

DROP_KIND = "checkpoint_drop"  # regression_detail.kind of a run flagged against the previous checkpoint's run


@dataclass(frozen=True)
class _Run:
    checkpoint_id: int
    task_id: int
    run_id: int
    score: float
    drop: bool
    judge: dict[str, Any] | None = None  # the run's judge usage (runs.judge_usage); None: no LLM judge counted


def suite_of(session: Session, model: Model, suite_name: str | None) -> Suite:
    """The suite asked for, else the model's own; InvalidRequestError when there is neither."""
    if suite_name:
        return get_suite(session, suite_name)
    own = session.get(Suite, model.suite_id) if model.suite_id is not None else None
    if own is None:
        raise InvalidRequestError(
            f"suite: model {model.name!r} has no suite; pass ?suite=<name> or set the model's suite "
            "(its checkpoints are evaluated on it)"
        )
    return get_suite(session, own.name)


def ordered_checkpoints(session: Session, model: Model) -> list[Checkpoint]:
    """Training order: by step, then the label-only ones by created_at."""
    c = Checkpoint
    stmt = select(c).where(c.model_id == model.id).order_by(c.step.asc().nulls_last(), c.created_at, c.id)
    return list(session.scalars(stmt))


def _is_drop(regression: bool, detail: dict[str, Any] | None) -> bool:
    return bool(regression) and (detail or {}).get("kind") == DROP_KIND


def _latest_runs(session: Session, model: Model, suite: Suite, checkpoint_ids: list[int]) -> list[_Run]:
    """The latest counted run per (checkpoint, task): the model's per-checkpoint board entries
    (runs.board_entries), with each run's flag."""
    e, r = BoardEntry, EvalRun
    stmt = (
        select(
            e.checkpoint_key,
            e.task_id,
            e.run_id,
            e.score,
            r.regression,
            r.regression_detail,
            r.fingerprint[judge_usage.USAGE_KEY],  # that part only of the fingerprint
        )
        .join(r, r.id == e.run_id)
        .where(
            e.model_id == model.id,
            e.checkpoint_key.in_(checkpoint_ids),
            e.task_id.in_([m.task_id for m in suite.members]),
            e.pick == "latest",
            e.include_limited.is_(False),
        )
    )
    return [
        _Run(cid, tid, rid, float(score), _is_drop(reg, detail), usage if isinstance(usage, dict) else None)
        for cid, tid, rid, score, reg, detail, usage in session.execute(stmt)
    ]


def _judge_sums(runs: list[_Run]) -> dict[int, tuple[int, float | None]]:
    """Per checkpoint: the judge requests of its runs on the suite, and their cost (None: no judged run priced)."""
    sums: dict[int, tuple[int, float | None]] = {}
    for run in runs:
        if run.judge is None:
            continue
        requests, cost = sums.get(run.checkpoint_id, (0, None))
        price = run.judge.get("cost_usd")
        sums[run.checkpoint_id] = (
            requests + int(run.judge.get("requests") or 0),
            cost if price is None else round((cost or 0.0) + float(price), 9),
        )
    return sums


def weighted_mean(values: dict[str, float], weights: dict[str, float]) -> float | None:
    """The overall board's average: weighted by the suite's weights over the tasks that have a value."""
    total = sum(weights[t] for t in values)
    return sum(weights[t] * v for t, v in values.items()) / total if total else None


def average_tolerance(suite: Suite) -> float:
    """The points (0-100) a checkpoint's average may fall: the mean of the tasks' normalised tolerances."""
    tols = [100.0 * m.task.regression_tolerance / m.task.metric_scale for m in suite.members]
    return sum(tols) / len(tols) if tols else 0.0


def _values(row: CheckpointScoresRow) -> dict[str, float]:
    return {t: c.score for t, c in row.scores.items() if c is not None}


def _mark_average_drops(rows: list[CheckpointScoresRow], weights: dict[str, float], tolerance: float) -> None:
    scored = [r for r in rows if r.coverage]  # a checkpoint without results yet is skipped, not a zero
    for prev, row in pairwise(scored):
        now, before = _values(row), _values(prev)
        common = set(now) & set(before)
        a = weighted_mean({t: now[t] for t in common}, weights)
        b = weighted_mean({t: before[t] for t in common}, weights)
        row.average_drop = a is not None and b is not None and b - a > tolerance + 1e-9


def _mark_best(rows: list[CheckpointScoresRow], n_tasks: int) -> None:
    full = [r for r in rows if r.coverage == n_tasks and r.average is not None]
    if full:
        top = max(r.average or 0.0 for r in full)
        next(r for r in full if r.average == top).best = True  # the earliest of equals


def checkpoint_scores(session: Session, model_name: str, suite_name: str | None = None) -> CheckpointScores:
    """Every checkpoint of the model on the suite (see the module's rules)."""
    model = get_model(session, model_name)
    suite = suite_of(session, model, suite_name)
    checkpoints = ordered_checkpoints(session, model)
    tasks = {m.task_id: m.task for m in suite.members}
    weights = {m.task.name: m.weight for m in suite.members}
    cells: dict[int, dict[str, CheckpointCell]] = {}
    latest = _latest_runs(session, model, suite, [c.id for c in checkpoints])
    judged = _judge_sums(latest)
    for run in latest:
        task = tasks[run.task_id]
        cells.setdefault(run.checkpoint_id, {})[task.name] = CheckpointCell(
            score=normalise(run.score, task), run_id=run.run_id, drop=run.drop
        )
    rows = []
    for c in checkpoints:
        got = cells.get(c.id, {})
        rows.append(
            CheckpointScoresRow(
                id=c.id,
                step=c.step,
                label=c.label,
                created_at=c.created_at,
                scores={name: got.get(name) for name in weights},
                average=weighted_mean({t: cell.score for t, cell in got.items()}, weights),
                coverage=len(got),
                average_drop=False,
                best=False,
                judge_requests=judged[c.id][0] if c.id in judged else None,
                judge_cost_usd=judged[c.id][1] if c.id in judged else None,
            )
        )
    tolerance = average_tolerance(suite)
    _mark_average_drops(rows, weights, tolerance)
    _mark_best(rows, len(suite.members))
    return CheckpointScores(
        model=model.name,
        suite=suite.name,
        average_tolerance=tolerance,
        tasks=[
            CheckpointTask(name=m.task.name, display_name=m.task.display_name, weight=m.weight) for m in suite.members
        ],
        checkpoints=rows,
    )


def checkpointed_models(session: Session) -> list[CheckpointedModel]:
    """Models with at least one checkpoint, by name, with their suite and number of checkpoints."""
    stmt = (
        select(Model.name, Model.display_name, Suite.name, func.count(Checkpoint.id))
        .join(Checkpoint, Checkpoint.model_id == Model.id)
        .outerjoin(Suite, Suite.id == Model.suite_id)
        .group_by(Model.id, Suite.name)
        .order_by(Model.name)
    )
    return [
        CheckpointedModel(name=name, display_name=display, suite=suite, checkpoints=n)
        for name, display, suite, n in session.execute(stmt)
    ]
