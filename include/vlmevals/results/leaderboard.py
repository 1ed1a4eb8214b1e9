"""Read queries over completed runs: leaderboards, score histories, and the runs a comparison or a regression
check starts from (a model's newest run with per-sample results, a run's baseline).

Each leaderboard is one row per model read from the board entries (runs.board_entries: each model's best and
latest counted run, kept in the transaction that changes a run) in the order of their index: the cost grows with
the number of models on the board, not with the number of runs, and needs no warm cache.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import ColumnElement, func, select, true
from sqlalchemy.orm import Session, defer

from vlmevals.core.errors import NotFoundError
from vlmevals.core.vocabulary import RunStatus
from vlmevals.db.models import ALL_CHECKPOINTS, BoardEntry, EvalRun, Model, Task
from vlmevals.results.counted import counted
from vlmevals.results.fingerprint import COMPARABILITY_FIELDS, comparability_part
from vlmevals.runs import judge_usage

Pick = Literal["best", "latest"]
MAX_HISTORY_POINTS = 500


@dataclass
class LeaderboardEntry:
    """One ranked model: its chosen run and where it stands."""

    rank: int
    model: Model
    run: EvalRun
    categories: dict[str, float] = field(default_factory=dict)
    # the fingerprint parts drift marks compare (dataset md5, judge, toolkit); None: no fingerprint recorded
    comparability: dict[str, Any] | None = None
    judge: dict[str, Any] | None = None  # what judging the run cost (runs.judge_usage); None: no LLM judge counted


@dataclass
class UnrankedEntry:
    """A model with runs on the task but no completed, scored one (yet)."""

    model: Model
    latest_run_id: int
    latest_status: str


@dataclass
class Leaderboard:
    """The page asked for (`entries`), with what is over all ranked models: their count and, per run, the
    fingerprint parts the drift marks' majority compares."""

    task: Task
    pick: Pick
    entries: list[LeaderboardEntry]
    unranked: list[UnrankedEntry]
    count: int = 0
    compared: list[tuple[int, dict[str, Any] | None]] = field(default_factory=list)
    include_limited: bool = False  # runs on a subset (option `limit`) considered too (see results/counted.py)


@dataclass
class HistoryPoint:
    run_id: int
    finished_at: dt.datetime
    score: float
    sample_limit: int | None = None  # set: a limited run, only in a history that asked for them


@dataclass
class HistorySeries:
    model: Model
    points: list[HistoryPoint]


def _entries(task: Task, pick: Pick, include_limited: bool) -> list[ColumnElement[bool]]:
    """The task board's entries (runs.board_entries: each model's chosen run, kept with every completion)."""
    e = BoardEntry
    return [
        e.task_id == task.id,
        e.pick == pick,
        e.include_limited.is_(include_limited),
        e.checkpoint_key == ALL_CHECKPOINTS,
    ]


def category_scores(metrics: dict[str, Any] | None) -> dict[str, float]:
    """The per-category breakdown of a run's metric table, with a single `split=…|` prefix dropped."""
    table = (metrics or {}).get("table") or {}
    if not isinstance(table, dict):
        return {}
    items = {str(k): float(v) for k, v in table.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    prefixes = {k.split("|", 1)[0] for k in items if "|" in k}
    if len(prefixes) == 1 and all("|" in k for k in items):
        items = {k.split("|", 1)[1]: v for k, v in items.items()}
    return items


def leaderboard(
    session: Session,
    task: Task,
    pick: Pick = "best",
    limit: int | None = None,
    offset: int = 0,
    *,
    include_limited: bool = False,
) -> Leaderboard:
    """One row per model from its best (or latest) counted run (full-dataset only unless `include_limited`),
    ranked by the task's metric direction.

    Ties share a rank (competition ranking: 1, 2, 2, 4) and are listed by display name. Ranks, the count and
    the drift marks' majority are over all models, read as plain columns ranked in SQL; ORM objects (and the
    metric tables) are built for the page `offset`..`offset + limit` only.
    """
    ranked = _ranked(session, task, pick, include_limited)
    page = ranked[offset : None if limit is None else offset + limit]
    compared = [(run_id, comparability) for _, run_id, comparability in ranked]
    unranked = _unranked(session, task, include_limited)
    return Leaderboard(task, pick, _page(session, page), unranked, len(ranked), compared, include_limited)


def _ranked(
    session: Session, task: Task, pick: Pick, include_limited: bool
) -> list[tuple[int, int, dict[str, Any] | None]]:
    """(rank, run id, the fingerprint's compared parts) of every ranked model, in board order: the task's board
    entries by the order index (`rank_score`: the metric in the task's direction), one run probe per model for
    the fingerprint parts."""
    e = BoardEntry
    fp = EvalRun.fingerprint
    compared = [fp[part][key].astext for part, key, _ in COMPARABILITY_FIELDS]
    metric = e.rank_score.desc()
    stmt = (
        select(func.rank().over(order_by=metric), e.run_id, *compared)
        .select_from(e)
        .join(Model, Model.id == e.model_id)
        .join(EvalRun, EvalRun.id == e.run_id)
        .where(*_entries(task, pick, include_limited))
        # "C": code-point order, as Python sorted the names before
        .order_by(metric, func.lower(Model.display_name).collate("C"), Model.name.collate("C"))
    )
    return [(rank, run_id, comparability_part(values)) for rank, run_id, *values in session.execute(stmt)]


def _page(session: Session, page: list[tuple[int, int, dict[str, Any] | None]]) -> list[LeaderboardEntry]:
    """The page's rows as ORM objects with their per-category scores (metric tables read for these only)."""
    if not page:
        return []
    stmt = (
        select(Model, EvalRun, EvalRun.fingerprint[judge_usage.USAGE_KEY])  # that part only of the fingerprint
        .join(EvalRun, EvalRun.model_id == Model.id)
        .where(EvalRun.id.in_([run_id for _, run_id, _ in page]))
        .options(defer(EvalRun.fingerprint))
    )
    by_run = {run.id: (model, run, usage) for model, run, usage in session.execute(stmt)}
    entries = []
    for rank, run_id, comparability in page:
        model, run, usage = by_run[run_id]
        judge = usage if isinstance(usage, dict) else None
        entries.append(LeaderboardEntry(rank, model, run, category_scores(run.metrics), comparability, judge))
    return entries


def _unranked(session: Session, task: Task, include_limited: bool) -> list[UnrankedEntry]:
    """Models with runs on the task but no counted one (NOT EXISTS, not a list of the ranked), with their latest
    run: a model with only limited runs is listed here by default."""
    last = (
        select(EvalRun.id, EvalRun.status)
        .where(EvalRun.task_id == task.id, EvalRun.model_id == Model.id)
        .order_by(EvalRun.id.desc())
        .limit(1)
        .lateral("last")
    )
    e = BoardEntry
    cond = [*_entries(task, "latest", include_limited), e.model_id == Model.id]
    has_counted = select(e.run_id).where(*cond).correlate(Model).exists()  # an entry: a counted run
    stmt = select(Model, last.c.id, last.c.status).select_from(Model).join(last, true()).where(~has_counted)
    return [UnrankedEntry(m, rid, status) for m, rid, status in session.execute(stmt.order_by(Model.name))]


def score_history(
    session: Session, task: Task, *, model: Model | None = None, per_model: int = 50, include_limited: bool = False
) -> list[HistorySeries]:
    """Each model's counted scores on the task over time (oldest first), the last `per_model` runs; a limited run
    is a point only with `include_limited` (5 samples are not a step of the same line)."""
    per_model = max(1, min(per_model, MAX_HISTORY_POINTS))
    cond = counted(EvalRun, include_limited=include_limited)
    pts = (
        select(EvalRun.id, EvalRun.finished_at, EvalRun.primary_metric, EvalRun.sample_limit)
        .where(EvalRun.task_id == task.id, EvalRun.model_id == Model.id, *cond)
        .order_by(EvalRun.finished_at.desc(), EvalRun.id.desc())
        .limit(per_model)
        .lateral("pts")
    )
    cols = (pts.c.id, pts.c.finished_at, pts.c.primary_metric, pts.c.sample_limit)
    stmt = select(Model, *cols).select_from(Model).join(pts, true())
    if model is not None:
        stmt = stmt.where(Model.id == model.id)
    series: dict[int, HistorySeries] = {}
    for m, run_id, finished_at, score, sample_limit in session.execute(stmt):
        point = HistoryPoint(run_id, finished_at, score, sample_limit)
        series.setdefault(m.id, HistorySeries(m, [])).points.append(point)
    out = sorted(series.values(), key=lambda s: s.model.name)
    for s in out:
        s.points.sort(key=lambda p: (p.finished_at, p.run_id))
    return out


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
            EvalRun.status == RunStatus.COMPLETED,
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


def previous_completed(session: Session, run: EvalRun) -> EvalRun | None:
    """The pair's last counted run (of the same checkpoint, or none) finished before this one (a regression
    check's baseline): never a limited run."""
    same = (EvalRun.task_id == run.task_id, EvalRun.model_id == run.model_id, EvalRun.id != run.id)
    cond = [*same, EvalRun.checkpoint_id.is_not_distinct_from(run.checkpoint_id), *counted(EvalRun)]
    if run.finished_at is not None:
        cond.append(
            (EvalRun.finished_at < run.finished_at) | ((EvalRun.finished_at == run.finished_at) & (EvalRun.id < run.id))
        )
    return session.scalar(
        select(EvalRun).where(*cond).order_by(EvalRun.finished_at.desc().nulls_last(), EvalRun.id.desc()).limit(1)
    )
