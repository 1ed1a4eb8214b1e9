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

from collections.abc import Collection
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from sqlalchemy import Integer, any_, bindparam, select
from sqlalchemy.dialects.postgresql import ARRAY
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
    # where a renderer keeps what it made of this cell (api.overall_pages: its JSON). Cells are never changed,
    # only replaced (and shared by the boards patched from one another), so a memo is valid as long as its cell;
    # not an init field, so a replaced cell starts without one.
    memo: Any = field(default=None, init=False, compare=False, repr=False)


@dataclass
class Row:
    model: Model
    cells: dict[str, Cell]
    covered: int
    average: float
    rank: int | None = None
    mean_rank: float | None = None
    # the sum of the cells' task ranks (None as 0): integers, so a patch can move it by the ranks that changed
    # and still divide to the fresh board's mean rank exactly
    rank_sum: int = 0
    # `cells` is the dict of the row this one was patched from (no cell of it changed): copied before a change
    shared: bool = field(default=False, compare=False, repr=False)
    # where a renderer keeps what it made of `cells` (api.overall_pages), carried to a patched row sharing them
    memo: Any = field(default=None, compare=False, repr=False)


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
    session: Session, suite: Suite, pick: Pick, include_limited: bool, task_ids: Collection[int] | None = None
) -> list[tuple[int, int, int, float, int | None]]:
    """(model id, task id, run id, score, sample limit) per pair with a counted run: the one query of the cells,
    over the suite's board entries (runs.board_entries: each pair's best and latest counted run, as the per-task
    board); `task_ids`: those of the suite's tasks only.

    Plain columns, not ORM entities: 100,000 cells load in a fraction of the time; the models are read apart.
    """
    task_ids = [m.task_id for m in suite.members] if task_ids is None else sorted(task_ids)
    params = {"tasks": task_ids, "pick": pick, "limited": include_limited, "all": ALL_CHECKPOINTS}
    return [(mid, tid, rid, float(score or 0.0), lim) for mid, tid, rid, score, lim in session.execute(_CELLS, params)]


# built once: a patch reads one task's ~1,000 entries, where building the ORM statement cost as much as the query
_e = BoardEntry
_CELLS = select(_e.model_id, _e.task_id, _e.run_id, _e.score, _e.sample_limit).where(
    _e.task_id == any_(bindparam("tasks", type_=ARRAY(Integer))),
    _e.pick == bindparam("pick"),
    _e.include_limited == bindparam("limited"),
    _e.checkpoint_key == bindparam("all"),
)


def competition_ranks(values: list[float]) -> list[int]:
    """Ranks of `values`, higher first, ties shared (1, 2, 2, 4)."""
    ordered = sorted(values, reverse=True)
    first: dict[float, int] = {}
    for i, v in enumerate(ordered, start=1):
        first.setdefault(v, i)
    return [first[v] for v in values]


def _rank_tasks(names: Collection[str], ranked: list[Row]) -> None:
    """Competition ranks per task among the ranked rows (cells replaced, never changed: a patched board shares
    its unchanged cells with the board it was made from), the rank sums moved by what changed (each row's
    `rank_sum` holds its cells' ranks as they were), the mean ranks and the overall ranks."""
    for name in names:
        cells = [row.cells[name] for row in ranked]
        for row, cell, rank in zip(ranked, cells, competition_ranks([c.value for c in cells]), strict=True):
            if cell.task_rank != rank:
                row.rank_sum += rank - (cell.task_rank or 0)
                if row.shared:
                    row.cells, row.shared = dict(row.cells), False
                row.cells[name] = Cell(cell.run_id, cell.score, cell.value, rank, cell.sample_limit)
    for row in ranked:  # a ranked row has a cell on every task of the suite
        row.mean_rank = row.rank_sum / len(row.cells)
    for row, rank in zip(ranked, competition_ranks([row.average for row in ranked]), strict=True):
        row.rank = rank


def _spec(suite: Suite) -> dict[int, tuple[str, float, bool]]:
    """The suite's tasks as plain values, read once (not per cell): task id -> (name, scale, higher is better)."""
    return {m.task_id: (m.task.name, m.task.metric_scale, m.task.higher_is_better) for m in suite.members}


def _add_cells(
    cells: dict[int, dict[str, Cell]],
    rows: list[tuple[int, int, int, float, int | None]],
    spec: dict[int, tuple[str, float, bool]],
) -> None:
    for model_id, task_id, run_id, score, sample_limit in rows:
        name, scale, higher = spec[task_id]
        value = _normalised(score, scale, higher)
        cells.setdefault(model_id, {})[name] = Cell(run_id, score, value, sample_limit=sample_limit)


def _assemble(
    board: OverallBoard, rows: list[Row], names: list[str], rerank: Collection[str] | None = None
) -> OverallBoard:
    """Ranked and partial rows, ranks and order (`rerank`: only those tasks' ranks can have changed)."""
    ranked = [row for row in rows if row.covered == len(names)]
    partial = [row for row in rows if row.covered < len(names)]
    for row in partial:  # a model that lost a cell keeps no rank
        if any(c.task_rank is not None for c in row.cells.values()):
            row.cells = {n: replace(c, task_rank=None) for n, c in row.cells.items()}
        row.rank_sum = 0
    _rank_tasks(names if rerank is None else rerank, ranked)
    ranked.sort(key=lambda row: (row.rank or 0, row.mean_rank or 0.0, row.model.display_name.lower(), row.model.id))
    partial.sort(key=lambda row: (-row.covered, -row.average, row.model.display_name.lower(), row.model.id))
    board.ranked, board.partial = ranked, partial
    return board


def overall_board(
    session: Session, suite: Suite, pick: Pick = "best", *, include_limited: bool = False
) -> OverallBoard:
    """Every model with at least one cell: ranked (all tasks covered) or partial; see the module's rules."""
    spec = _spec(suite)
    cells: dict[int, dict[str, Cell]] = {}
    _add_cells(cells, _cells(session, suite, pick, include_limited), spec)
    models: list[Model] = list(session.scalars(select(Model).where(Model.id.in_(list(cells))))) if cells else []
    weights = {m.task.name: m.weight for m in suite.members}
    rows = [_row(m, cells[m.id], weights) for m in models]
    return _assemble(OverallBoard(suite, pick, [], [], include_limited), rows, [n for n, _, _ in spec.values()])


def patched_board(session: Session, board: OverallBoard, task_ids: Collection[int]) -> OverallBoard:
    """`board` with the columns of `task_ids` read again, for when only their board entries changed (their
    stamps moved, the models did not): equal to `overall_board` now, at the cost of one query of those tasks'
    entries (~1,000 rows a task) and work per row that does not grow with the suite's tasks: a row's average is
    summed again only where one of its cells changed (so it equals a fresh board's to the last bit), its rank
    sum is moved by the ranks that changed, instead of reading and building every cell (100,000 at 1,000 models
    x 100 tasks). `board` is not changed (it may be serving other requests): the rows are new, the unchanged
    cells shared."""
    suite = board.suite
    spec = _spec(suite)
    changed = {spec[t][0] for t in task_ids}
    names = [n for n, _, _ in spec.values()]
    old_rows = {row.model.id: row for row in (*board.ranked, *board.partial)}
    fresh: dict[int, dict[str, Cell]] = {}
    _add_cells(fresh, _cells(session, suite, board.pick, board.include_limited, task_ids), spec)
    new = [mid for mid in fresh if mid not in old_rows]
    models = {mid: row.model for mid, row in old_rows.items()}
    if new:
        models.update({m.id: m for m in session.scalars(select(Model).where(Model.id.in_(new)))})
    weights = {m.task.name: m.weight for m in suite.members}
    rows = []
    for mid, model in models.items():
        old, got = old_rows.get(mid), fresh.get(mid, {})
        if old is not None and all(_same(old.cells.get(n), got.get(n)) for n in changed):
            # nothing of this row changed: its cells are shared (copied by _rank_tasks if a rank moves)
            row = Row(model, old.cells, old.covered, old.average, rank_sum=old.rank_sum, shared=True)
            row.memo = old.memo
            rows.append(row)
            continue
        cells = dict(old.cells) if old is not None else {}
        rank_sum = old.rank_sum if old is not None else 0
        for name in changed:
            before, after = cells.pop(name, None), got.get(name)
            if before is not None and _same(before, after):
                cells[name] = before  # kept with its rank (_rank_tasks replaces it if that moved)
                continue
            if before is not None:
                rank_sum -= before.task_rank or 0
            if after is not None:
                cells[name] = after  # no rank yet
        if cells:  # its average summed again (the others' are bit for bit what they were)
            row = _row(model, cells, weights)
            row.rank_sum = rank_sum  # still the sum of its cells' ranks
            rows.append(row)
    # the same ranked models: only the changed columns' ranks can move; else every column is ranked again
    same_ranked = {r.model.id for r in board.ranked} == {r.model.id for r in rows if r.covered == len(names)}
    out = OverallBoard(suite, board.pick, [], [], board.include_limited)
    return _assemble(out, rows, names, rerank=changed if same_ranked else None)


def _same(a: Cell | None, b: Cell | None) -> bool:
    """The same cell (or none) but for its task rank."""
    if a is None or b is None:
        return a is b
    return (a.run_id, a.score, a.value, a.sample_limit) == (b.run_id, b.score, b.value, b.sample_limit)


def _row(model: Model, cells: dict[str, Cell], weights: dict[str, float]) -> Row:
    """A model's row: coverage and the weighted average over the tasks it has (summed in the suite's task order,
    `weights`' order, so a patched board's averages equal a fresh board's to the last bit)."""
    if len(cells) == len(weights):  # every task: no membership tests (the board builds 1,000 such rows)
        total, average = sum(weights.values()), sum([w * cells[t].value for t, w in weights.items()])
    else:
        total = sum([w for t, w in weights.items() if t in cells])
        average = sum([w * cells[t].value for t, w in weights.items() if t in cells])
    return Row(model, cells, len(cells), average / total)


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
