"""A per-process cache of computed overall boards (and of rendered leaderboard and run-listing pages), kept by the
API layer (results/ only computes; the routes cache what they serve): at 1,000 models
x 100 tasks computing one takes ~1 s (a 100,000-row query and 100,000 cells), far above the board's 50 ms budget,
while results change rarely.

An entry is keyed by the suite (id, and each member's task, weight, scale and direction), the pick and whether
limited runs are included, and is
valid while the "results changed" stamp is the same. The stamp needs no table scan, only index probes:
- `max(eval_runs.id)`: every new run (triggered, backfilled);
- the newest `eval_run_events` row (id and inserting transaction): every status transition, and backfill's
  re-sync of a changed outcome in place (`runs.backfilled.resync_backfilled` writes an event);
- the ids and statuses of queued/running runs (the partial index `ix_eval_runs_active`): a run finishing;
- the models' count, max id and a digest of (id, row version): new, removed or edited models (1,000 rows).
What it misses: a completed run's metric, status or `finished_at` changed or a run deleted by hand in SQL
without an event (no code path of ours does so); the page then shows the old board until anything above
changes.
"""

from __future__ import annotations

import gc
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import text
from sqlalchemy.orm import Session

from vlmevals.core.vocabulary import ACTIVE_STATUSES
from vlmevals.db.base import in_list
from vlmevals.db.models import Suite
from vlmevals.results.overall import OverallBoard, Pick, overall_board

MAX_ENTRIES = 32
MAX_PAGES = 256  # rendered leaderboard and run-listing pages (a few KB to ~100 KB each)
T = TypeVar("T")

_PARTS = (
    "SELECT (SELECT max(id) FROM eval_runs),"
    " (SELECT e.id::text || ':' || e.xmin::text FROM eval_run_events e ORDER BY e.id DESC LIMIT 1),"
    " (SELECT string_agg(r.id::text || ':' || r.status, ',' ORDER BY r.id) FROM eval_runs r"
    f"   WHERE {in_list('r.status', ACTIVE_STATUSES)}),"
    " (SELECT count(*)::text || ':' || coalesce(max(m.id), 0)::text || ':'"
    "   || md5(coalesce(string_agg(m.id::text || ':' || m.xmin::text, ',' ORDER BY m.id), '')) FROM models m)"
)
_STAMP = text(_PARTS)
# run listings also show what changes on an active run without an event (progress, attempts, DAG run id) and
# the tasks' columns: every row version of the queued/running runs, a digest of the tasks (a few hundred rows)
_LIVE_STAMP = text(
    _PARTS + ", (SELECT string_agg(r.id::text || ':' || r.xmin::text, ',' ORDER BY r.id) FROM eval_runs r"
    f"   WHERE {in_list('r.status', ACTIVE_STATUSES)}),"
    " (SELECT md5(coalesce(string_agg(t.id::text || ':' || t.xmin::text, ',' ORDER BY t.id), '')) FROM tasks t)"
)


@dataclass
class CachedBoard(OverallBoard):
    """A board from the cache, with what the API rendered from it (its rows' JSON, pages: api.overall_pages),
    valid exactly as long as the board."""

    rendered: dict[tuple[Any, ...], Any] = field(default_factory=dict)


_lock = threading.Lock()
_entries: OrderedDict[tuple[Any, ...], tuple[tuple[Any, ...], CachedBoard]] = OrderedDict()
_pages: OrderedDict[tuple[Any, ...], tuple[tuple[Any, ...], Any]] = OrderedDict()


def results_stamp(session: Session) -> tuple[Any, ...]:
    """What changes whenever a board's inputs change through our code paths (see the module)."""
    return tuple(session.execute(_STAMP).one())


def _key(suite: Suite, pick: Pick, include_limited: bool) -> tuple[Any, ...]:
    members = tuple(
        (m.task_id, m.task.name, m.weight, m.task.metric_scale, m.task.higher_is_better) for m in suite.members
    )
    return (suite.id, members, pick, include_limited)


def cached_board(session: Session, suite: Suite, pick: Pick = "best", *, include_limited: bool = False) -> CachedBoard:
    """`overall_board`, computed again only when the stamp moved (read first: a change meanwhile shows next time).

    The cached rows are shared between requests and threads: callers sort and page them, never change them;
    `rendered` is shared too (what a caller rendered from this board, valid exactly as long as it).
    """
    key, stamp = _key(suite, pick, include_limited), results_stamp(session)
    with _lock:
        hit = _entries.get(key)
        if hit is not None and hit[0] == stamp:
            _entries.move_to_end(key)
            return CachedBoard(suite, pick, hit[1].ranked, hit[1].partial, include_limited, hit[1].rendered)
    fresh = overall_board(session, suite, pick, include_limited=include_limited)
    board = CachedBoard(suite, pick, fresh.ranked, fresh.partial, include_limited)
    _detach(session, board)
    with _lock:
        _entries[key] = (stamp, board)
        _entries.move_to_end(key)
        while len(_entries) > MAX_ENTRIES:
            _entries.popitem(last=False)
    _settle()
    return board


def cached_page(session: Session, key: tuple[Any, ...], render: Callable[[], T], *, live: bool = False) -> T:
    """`render()`, made again only when the stamp moved: a per-task leaderboard page at 100,000 runs costs
    ~30 ms of queries and representation, its stamp ~1 ms. `key` must hold everything else the page shows
    (the task's own columns, the query, the API root). `live`: the run listings' stamp, which also moves
    with every write to an active run and to a task. Read the stamp first, as `cached_board` does."""
    stamp = tuple(session.execute(_LIVE_STAMP).one()) if live else results_stamp(session)
    with _lock:
        hit = _pages.get(key)
        if hit is not None and hit[0] == stamp:
            _pages.move_to_end(key)
            got: T = hit[1]
            return got
    out = render()
    with _lock:
        _pages[key] = (stamp, out)
        _pages.move_to_end(key)
        while len(_pages) > MAX_PAGES:
            _pages.popitem(last=False)
    return out


def _detach(session: Session, board: OverallBoard) -> None:
    """The cached rows outlive this request's session: its models are taken out of it with their loaded columns,
    or a rollback (or commit) there would expire them and a later request reading `row.model.name` would fail."""
    for row in (*board.ranked, *board.partial):
        if row.model in session:
            session.expunge(row.model)


def _settle() -> None:
    """Move what is alive now (the new board's ~100,000 cells) out of the cyclic collector's reach: otherwise
    every full collection walks them (80-380 ms pauses, every ~6th request at 1,000 x 100). Collected first,
    so no garbage is kept; cells and rows hold no reference cycles, so an evicted board is still freed."""
    gc.collect()
    gc.freeze()


def clear() -> None:
    """Forget every board and page (tests, or after a write the stamp cannot see)."""
    with _lock:
        _entries.clear()
        _pages.clear()
