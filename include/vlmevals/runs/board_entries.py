"""The board entries (db.board_tables): what each board ranks, kept in the transaction that changes a run.

`refresh_runs` is the hook: every write that can change what a board shows of a run calls it with the runs it
changed (a status transition: `lifecycle._transition`, a refused run, a regression verdict, backfill's inserts and
re-syncs; a re-judge completes through `_transition` too). It recomputes the entries of those runs' (task, model)
pairs from their counted runs (`runs.counted`: the rule the boards applied to every run before) and moves the tasks'
stamps, which the API's page caches are keyed by. Recomputing a pair (a few hundred runs a year, one index range)
rather than patching its entry keeps one definition of "best" and "latest": the one `_computed` writes in SQL.

`refresh_summaries` is the narrower hook for a run whose per-sample summary alone changed (backfill's second
pass). `rebuild` recomputes every entry (the migration that created the table, a bench's generated history);
`differences` compares the table with a recomputation (`vlmevals db verify-boards`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import (
    CompoundSelect,
    Connection,
    Integer,
    Subquery,
    and_,
    case,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, distinct_on
from sqlalchemy.dialects.postgresql import insert as pg_insert

from vlmevals.db.models import ALL_CHECKPOINTS, BoardEntry, BoardStamp, EvalRun, Model, Task
from vlmevals.runs.counted import counted, full_dataset

KEY = ("task_id", "model_id", "checkpoint_key", "pick", "include_limited")
VALUES = (
    "run_id",
    "rank_score",
    "score",
    "finished_at",
    "sample_limit",
    "ci_low",
    "ci_high",
    "samples_total",
    "samples_failed",
)
COLUMNS = (*KEY, *VALUES)
# (pick, include_limited, per checkpoint): the boards' four choices over a pair's runs, and the checkpoint scores'
VARIANTS = (
    ("best", False, False),
    ("best", True, False),
    ("latest", False, False),
    ("latest", True, False),
    ("latest", False, True),
)
MAX_REPORTED = 50


def _variant(c: Any, pick: str, include_limited: bool, per_checkpoint: bool) -> Subquery:
    """One choice as DISTINCT ON over the counted runs: the best in the task's direction (the latest among equal
    scores, then the highest id) or the latest (by finished_at, then id): the order the boards used."""
    key: list[Any] = [c.task_id, c.model_id]
    where: list[Any] = [] if include_limited else [c.full]
    checkpoint: Any = literal(ALL_CHECKPOINTS)
    if per_checkpoint:
        key.append(c.checkpoint_id)
        where.append(c.checkpoint_id.is_not(None))
        checkpoint = c.checkpoint_id
    order = [c.rank_score.desc()] if pick == "best" else []
    order += [c.finished_at.desc(), c.run_id.desc()]
    values = [getattr(c, name) for name in VALUES]
    cols = [c.task_id, c.model_id, checkpoint.label("checkpoint_key"), literal(pick).label("pick")]
    cols.append(literal(include_limited).label("include_limited"))
    stmt = select(*cols, *values).where(*where).ext(distinct_on(*key)).order_by(*key, *order)
    return stmt.subquery()


def _pairs(wanted: list[tuple[int, int]]) -> Any:
    """The pairs as a table (unnest of two arrays): joined, each is one probe of a (task, model) index."""
    tasks = literal([t for t, _ in wanted], ARRAY(Integer))  # one array parameter each, however many pairs
    models = literal([m for _, m in wanted], ARRAY(Integer))
    return func.unnest(tasks, models).table_valued("task_id", "model_id").render_derived(name="pairs")


def _computed(pairs: Any | None) -> CompoundSelect[Any]:
    """Every entry of the `pairs` (all when None), recomputed from the runs: the one definition."""
    r = EvalRun
    rank_score = case((Task.higher_is_better, r.primary_metric), else_=-r.primary_metric)
    stmt = (
        select(
            r.task_id,
            r.model_id,
            r.checkpoint_id,
            r.id.label("run_id"),
            rank_score.label("rank_score"),
            r.primary_metric.label("score"),
            r.finished_at,
            r.sample_limit,
            r.ci_low,
            r.ci_high,
            r.samples_total,
            r.samples_failed,
            full_dataset(r).label("full"),
        )
        .join(Task, Task.id == r.task_id)
        .where(*counted(r, include_limited=True))
    )
    if pairs is not None:
        stmt = stmt.join(pairs, and_(r.task_id == pairs.c.task_id, r.model_id == pairs.c.model_id))
    runs = stmt.cte("counted_runs")
    parts = [_variant(runs.c, *v) for v in VARIANTS]
    return union_all(*[select(*[p.c[name] for name in COLUMNS]) for p in parts])


def _bump(connection: Connection, task_ids: list[int]) -> None:
    """Move the tasks' stamps; in task order, so two writers lock them in the same order (the row lock also
    serialises two refreshes of one task: the second recomputes after the first committed)."""
    if not task_ids:
        return
    stmt = pg_insert(BoardStamp).values([{"task_id": t, "version": 1} for t in sorted(task_ids)])
    stmt = stmt.on_conflict_do_update(index_elements=[BoardStamp.task_id], set_={"version": BoardStamp.version + 1})
    connection.execute(stmt)


def refresh_runs(connection: Connection, run_ids: Iterable[int]) -> None:
    """The hook: the entries of these runs' (task, model) pairs recomputed, their tasks' stamps moved, in the
    caller's transaction (so no reader sees a run completed and the boards without it, or the reverse)."""
    ids = sorted(set(run_ids))
    if not ids:
        return
    stmt = select(EvalRun.task_id, EvalRun.model_id).where(EvalRun.id.in_(ids)).distinct()
    refresh_pairs(connection, [(t, m) for t, m in connection.execute(stmt)])


SUMMARY = ("ci_low", "ci_high", "samples_total", "samples_failed")  # the values no board ranks by


def refresh_summaries(connection: Connection, run_ids: Iterable[int]) -> None:
    """The entries of these runs take the runs' current per-sample summary (CI and counts) and their tasks'
    stamps move: for a write that changes nothing a board ranks by (backfill's second pass), so no pair needs
    recomputing (one UPDATE by ix_board_entries_run instead of `refresh_runs`' DISTINCT ON per pair)."""
    ids = sorted(set(run_ids))
    if not ids:
        return
    e, r = BoardEntry, EvalRun
    stmt = (
        update(e)
        .where(e.run_id == r.id, r.id.in_(ids))
        .values({name: getattr(r, name) for name in SUMMARY})
        .returning(e.task_id)
    )
    _bump(connection, sorted(set(connection.scalars(stmt))))


def refresh_pairs(connection: Connection, pairs: Iterable[tuple[int, int]]) -> None:
    """The entries of these (task id, model id) pairs recomputed from their runs."""
    wanted = sorted(set(pairs))
    if not wanted:
        return
    _bump(connection, sorted({t for t, _ in wanted}))
    e, table = BoardEntry, _pairs(wanted)
    connection.execute(delete(e).where(e.task_id == table.c.task_id, e.model_id == table.c.model_id))
    connection.execute(insert(e).from_select(list(COLUMNS), _computed(table)))


def rebuild(connection: Connection) -> int:
    """Every entry recomputed from the runs (and every task's stamp moved); returns the number of entries."""
    connection.execute(delete(BoardEntry))
    connection.execute(insert(BoardEntry).from_select(list(COLUMNS), _computed(None)))
    _bump(connection, list(connection.scalars(select(Task.id))))
    return int(connection.scalar(select(func.count()).select_from(BoardEntry)) or 0)


def differences(connection: Connection) -> list[str]:
    """What the stored entries and a recomputation from the runs disagree on, one readable line per entry (at most
    MAX_REPORTED, then a count of the rest); empty when they agree."""
    fresh = _computed(None).cte("fresh")
    stored = BoardEntry.__table__.alias("stored")
    on = and_(*[fresh.c[k] == stored.c[k] for k in KEY])
    differ = or_(*[fresh.c[v].is_distinct_from(stored.c[v]) for v in VALUES])
    key = [func.coalesce(fresh.c[k], stored.c[k]).label(k) for k in KEY]
    pairs = select(*key, stored.c.run_id.label("stored"), fresh.c.run_id.label("fresh"))
    diff = pairs.select_from(fresh.join(stored, on, full=True)).where(differ).cte("diff")
    stmt = (
        select(Task.name, Model.name, *[diff.c[k] for k in KEY[2:]], diff.c.stored, diff.c.fresh)
        .join(Task, Task.id == diff.c.task_id)
        .join(Model, Model.id == diff.c.model_id)
        .order_by(*[diff.c[k] for k in KEY])
    )
    rows = connection.execute(stmt).all()
    lines = [
        f"{task} x {model}"
        + (f" at checkpoint {ckpt}" if ckpt != ALL_CHECKPOINTS else "")
        + f", {pick}{' (limited runs included)' if limited else ''}: stored "
        + (f"run {stored}" if stored is not None else "nothing")
        + ", recomputed "
        + (f"run {got}" if got is not None else "nothing")
        + (" (same run, other values)" if stored == got else "")
        for task, model, ckpt, pick, limited, stored, got in rows[:MAX_REPORTED]
    ]
    if len(rows) > MAX_REPORTED:
        lines.append(f"... and {len(rows) - MAX_REPORTED} more")
    return lines
