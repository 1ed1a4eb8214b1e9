"""The overall board of a suite: a model x task matrix of normalised scores, the weighted average, the mean
rank and the coverage of every model.

Rules (the README states them too):
- a cell is the model's best (or latest) completed, scored run on the task, as on the per-task board: a
  full-dataset run (results/counted.py), or any with `include_limited`, where a limited cell is marked;
- its value is normalised to 0-100: `100 * score / metric_scale`, and `100 - that` for a lower-is-better task;
- the average is over the suite's tasks, weighted by the suite's weights;
- coverage is k of n: ranked rows need every task (k = n); models with a cell on some but not all tasks are
  listed under `partial` with their coverage and an average over what they have, but no rank and no mean rank;
- per task, the ranked models get competition ranks (1, 2, 2, 4; ties shared) by the normalised value; the
  mean rank is the plain mean of those ranks;
- the overall rank is a competition rank by the average (higher first).

The cells come from one SQL query over the suite's board entries (runs.board_entries: each pair's best or latest
counted run in the task's direction, kept with every completion), the models with cells from a second;
everything else is computed here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from vlmevals.core.errors import InvalidRequestError
from vlmevals.db.models import ALL_CHECKPOINTS, BoardEntry, Model, Suite, Task

Pick = Literal["best", "latest"]
Order = Literal["asc", "desc"]
FIXED_COLUMNS = ("rank", "average", "mean_rank", "covered", "model")
# the natural direction of each column when `order` is not given (task columns: higher first)
_DEFAULT_ORDER: dict[str, Order] = {"rank": "asc", "mean_rank": "asc", "model": "asc"}


@dataclass
class Cell:
    run_id: int
    score: float  # on the task's own scale and direction
    value: float  # normalised, 0-100, higher is better
    task_rank: int | None = None  # among the ranked models only
    sample_limit: int | None = None  # set: a limited run (a board that includes them)


@dataclass
class Row:
    model: Model
    cells: dict[str, Cell]
    covered: int
    average: float
    rank: int | None = None
    mean_rank: float | None = None


@dataclass
class OverallBoard:
    suite: Suite
    pick: Pick
    ranked: list[Row]
    partial: list[Row] = field(default_factory=list)
    include_limited: bool = False


def normalise(score: float, task: Task) -> float:
    """A score on 0-100 where higher is better, whatever the task's scale and direction."""
    return _normalised(score, task.metric_scale, task.higher_is_better)


def _normalised(score: float, scale: float, higher_is_better: bool) -> float:
    """`normalise` on plain values: the board calls it 100,000 times, ORM attribute reads would dominate."""
    value = 100.0 * score / scale
    return value if higher_is_better else 100.0 - value


def _cells(
    session: Session, suite: Suite, pick: Pick, include_limited: bool
) -> list[tuple[int, int, int, float, int | None]]:
    """(model id, task id, run id, score, sample limit) per pair with a counted run: the one query of the cells,
    over the suite's board entries (runs.board_entries: each pair's best and latest counted run, as the per-task board).

    Plain columns, not ORM entities: 100,000 cells load in a fraction of the time; the models are read apart.
    """
    e = BoardEntry
    task_ids = [m.task_id for m in suite.members]
    stmt = select(e.model_id, e.task_id, e.run_id, e.score, e.sample_limit).where(
        e.task_id.in_(task_ids),
        e.pick == pick,
        e.include_limited.is_(include_limited),
        e.checkpoint_key == ALL_CHECKPOINTS,
    )
    return [(mid, tid, rid, float(score or 0.0), lim) for mid, tid, rid, score, lim in session.execute(stmt)]


def competition_ranks(values: list[float]) -> list[int]:
    """Ranks of `values`, higher first, ties shared (1, 2, 2, 4)."""
    ordered = sorted(values, reverse=True)
    first: dict[float, int] = {}
    for i, v in enumerate(ordered, start=1):
        first.setdefault(v, i)
    return [first[v] for v in values]


def _rank_tasks(names: list[str], ranked: list[Row]) -> None:
    for name in names:
        cells = [row.cells[name] for row in ranked]
        for cell, rank in zip(cells, competition_ranks([c.value for c in cells]), strict=True):
            cell.task_rank = rank
    n = len(names)
    for row in ranked:
        row.mean_rank = sum(c.task_rank or 0 for c in row.cells.values()) / n
    for row, rank in zip(ranked, competition_ranks([row.average for row in ranked]), strict=True):
        row.rank = rank


def overall_board(
    session: Session, suite: Suite, pick: Pick = "best", *, include_limited: bool = False
) -> OverallBoard:
    """Every model with at least one cell: ranked (all tasks covered) or partial; see the module's rules."""
    # the suite's tasks as plain values, read once (not per cell)
    spec = {m.task_id: (m.task.name, m.task.metric_scale, m.task.higher_is_better) for m in suite.members}
    cells: dict[int, dict[str, Cell]] = {}
    for model_id, task_id, run_id, score, sample_limit in _cells(session, suite, pick, include_limited):
        name, scale, higher = spec[task_id]
        value = _normalised(score, scale, higher)
        cells.setdefault(model_id, {})[name] = Cell(run_id, score, value, sample_limit=sample_limit)
    models: list[Model] = list(session.scalars(select(Model).where(Model.id.in_(list(cells))))) if cells else []
    weights = {m.task.name: m.weight for m in suite.members}
    rows = [_row(m, cells[m.id], weights) for m in models]
    names = [name for name, _, _ in spec.values()]
    ranked = [row for row in rows if row.covered == len(names)]
    partial = [row for row in rows if row.covered < len(names)]
    _rank_tasks(names, ranked)
    ranked.sort(key=lambda row: (row.rank or 0, row.mean_rank or 0.0, row.model.display_name.lower()))
    partial.sort(key=lambda row: (-row.covered, -row.average, row.model.display_name.lower()))
    return OverallBoard(suite, pick, ranked, partial, include_limited)


def _row(model: Model, cells: dict[str, Cell], weights: dict[str, float]) -> Row:
    """A model's row: coverage and the weighted average over the tasks it has."""
    total = sum(weights[t] for t in cells)
    average = sum(weights[t] * c.value for t, c in cells.items()) / total
    return Row(model, cells, len(cells), average)


def default_order(column: str) -> Order:
    """Ranks and names ascending, scores (average, coverage, task values) descending."""
    return _DEFAULT_ORDER.get(column, "desc")


def sort_rows(board: OverallBoard, column: str, order: Order | None) -> list[Row]:
    """The ranked rows by any column (a fixed one or a task name); InvalidRequestError for an unknown one."""
    tasks = [m.task.name for m in board.suite.members]
    if column not in FIXED_COLUMNS and column not in tasks:
        raise InvalidRequestError(
            f"sort: unknown column {column!r}; use one of {', '.join(FIXED_COLUMNS)} or a task of the suite "
            f"({', '.join(tasks)})"
        )
    direction = order or default_order(column)

    def key(row: Row) -> tuple[float | str, int]:
        if column == "model":
            return (row.model.display_name.lower(), 0)
        value = {"rank": row.rank, "average": row.average, "mean_rank": row.mean_rank, "covered": row.covered}
        got = value[column] if column in value else row.cells[column].value
        return (float(got or 0.0), 0)

    rows = sorted(board.ranked, key=lambda row: (row.rank or 0, row.model.display_name.lower()))
    return sorted(rows, key=key, reverse=direction == "desc")
