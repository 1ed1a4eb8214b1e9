"""A per-process cache of computed overall boards (and of rendered leaderboard and run-listing pages), kept by the
API layer (results/ only computes; the routes cache what they serve): at 1,000 models x 100 tasks an overall board
is 100,000 cells, far above the board's 50 ms budget to build on each request.

Boards and leaderboard pages are valid per task (a suite: its tasks), not until any run anywhere changes: their
stamp is the tasks' board stamps (`board_stamps`, moved in the transaction of every write that changes what a
board shows of a run: runs.board_entries.refresh_runs) with each row's version and inserting transaction, plus
- for a leaderboard page, the ids and statuses of the task's queued/running runs (its `unranked` list shows a
  model's latest status; the partial index `ix_eval_runs_active`);
- the models' count, max id and a digest of (id, row version): new, removed or edited models.
An entry is keyed by the suite (id, and each member's task, weight, scale and direction), the pick and whether
limited runs are included. When only some of a board's task stamps moved (a nightly completing runs), the cached
board is patched: those tasks' columns read again from their entries, averages and ranks recomputed
(`results.overall.patched_board`), not its 100,000 cells built again. A board's stamp is read at most every
`EVALS_BOARD_REFRESH_S` (0.5 s; `cached_board`). What it misses: a run changed by hand in
SQL without `refresh_runs` (no code path of ours does so; `vlmevals db verify-boards` finds the entries it left
stale).

Run listings keep the global "results changed" stamp, which needs no table scan, only index probes:
`max(eval_runs.id)`, the newest `eval_run_events` row (id and inserting transaction), every row version of the
queued/running runs (progress, attempts, DAG run id change without an event), the models' and the tasks' digests.
"""

from __future__ import annotations

import gc
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import Integer, bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from vlmevals.core.settings import get_settings
from vlmevals.core.vocabulary import ACTIVE_STATUSES
from vlmevals.db.base import in_list
from vlmevals.db.models import Suite
from vlmevals.results.overall import OverallBoard, Pick, overall_board, patched_board

MAX_ENTRIES = 32
# a board whose stamp moved for at most this share of its tasks is patched (those columns read again, see
# results.overall.patched_board), not built again
PATCH_MAX_SHARE = 0.5
SETTLE_EVERY = 32  # patched boards between two full collections (_settle)
MAX_PAGES = 256  # rendered leaderboard and run-listing pages (a few KB to ~100 KB each)
T = TypeVar("T")

_MODELS = (
    " (SELECT count(*)::text || ':' || coalesce(max(m.id), 0)::text || ':'"
    "   || md5(coalesce(string_agg(m.id::text || ':' || m.xmin::text, ',' ORDER BY m.id), '')) FROM models m)"
)
_PARTS = (
    "SELECT (SELECT max(id) FROM eval_runs),"
    " (SELECT e.id::text || ':' || e.xmin::text FROM eval_run_events e ORDER BY e.id DESC LIMIT 1),"
    " (SELECT string_agg(r.id::text || ':' || r.status, ',' ORDER BY r.id) FROM eval_runs r"
    f"   WHERE {in_list('r.status', ACTIVE_STATUSES)})," + _MODELS
)
# a board's or a leaderboard page's stamp: its tasks' board stamps (+ their active runs for a page), the models
_TASKS = (
    "SELECT (SELECT string_agg(b.task_id::text || ':' || b.version::text || ':' || b.xmin::text, ','"
    "   ORDER BY b.task_id) FROM board_stamps b WHERE b.task_id = ANY(:tasks)),"
)
_BOARD_STAMP = text(_TASKS + _MODELS).bindparams(bindparam("tasks", type_=ARRAY(Integer)))
_PAGE_STAMP = text(
    _TASKS + " (SELECT string_agg(r.id::text || ':' || r.status, ',' ORDER BY r.id) FROM eval_runs r"
    f"   WHERE {in_list('r.status', ACTIVE_STATUSES)} AND r.task_id = ANY(:tasks))," + _MODELS
).bindparams(bindparam("tasks", type_=ARRAY(Integer)))
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
# key -> (stamp, board, when that stamp was read: time.monotonic())
_entries: OrderedDict[tuple[Any, ...], tuple[tuple[Any, ...], CachedBoard, float]] = OrderedDict()
_pages: OrderedDict[tuple[Any, ...], tuple[tuple[Any, ...], Any]] = OrderedDict()
_patches = 0  # boards patched in this process (_settle)


def results_stamp(session: Session) -> tuple[Any, ...]:
    """What changes whenever any run, event or model changes (the run listings' base stamp; see the module)."""
    return tuple(session.execute(text(_PARTS)).one())


def tasks_stamp(session: Session, task_ids: Sequence[int], *, active: bool = False) -> tuple[Any, ...]:
    """What changes whenever a board of these tasks changes through our code paths (see the module); `active`:
    also their queued/running runs (a leaderboard page's `unranked` list shows them)."""
    stmt = _PAGE_STAMP if active else _BOARD_STAMP
    return tuple(session.execute(stmt, {"tasks": sorted(set(task_ids))}).one())


def _key(suite: Suite, pick: Pick, include_limited: bool) -> tuple[Any, ...]:
    members = tuple(
        (m.task_id, m.task.name, m.weight, m.task.metric_scale, m.task.higher_is_better) for m in suite.members
    )
    return (suite.id, members, pick, include_limited)


def cached_board(session: Session, suite: Suite, pick: Pick = "best", *, include_limited: bool = False) -> CachedBoard:
    """`overall_board`, computed again (patched) only when the stamp moved, and its stamp read at most every
    `EVALS_BOARD_REFRESH_S` (0.5 s): under a nightly writing 10 runs/s, a board patched for every request cost
    each request a patch (~20 ms of CPU); a board at most half a second old is well inside the boards' 1 s
    freshness. The stamp is read before the board: a change meanwhile shows next time.

    The cached rows are shared between requests and threads: callers sort and page them, never change them;
    `rendered` is shared too (what a caller rendered from this board, valid exactly as long as it).
    """
    key = _key(suite, pick, include_limited)
    with _lock:
        hit = _entries.get(key)
    if hit is not None and time.monotonic() - hit[2] < get_settings().board_refresh_s:
        return _served(key, hit[1], suite)  # brought up to date a moment ago (a nightly: at most so often)
    read_at = time.monotonic()
    stamp = tasks_stamp(session, [m.task_id for m in suite.members])
    if hit is not None and hit[0] == stamp:
        with _lock:
            _entries[key] = (stamp, hit[1], read_at)
        return _served(key, hit[1], suite)
    changed = _changed_tasks(hit[0], stamp) if hit is not None else None
    if hit is not None and changed and len(changed) <= len(suite.members) * PATCH_MAX_SHARE:
        old, patched = hit[1], True
        fresh = patched_board(session, OverallBoard(suite, pick, old.ranked, old.partial, include_limited), changed)
    else:
        fresh, patched = overall_board(session, suite, pick, include_limited=include_limited), False
    board = CachedBoard(suite, pick, fresh.ranked, fresh.partial, include_limited)
    _detach(session, board)
    with _lock:
        _entries[key] = (stamp, board, read_at)
        _entries.move_to_end(key)
        while len(_entries) > MAX_ENTRIES:
            _entries.popitem(last=False)
    _settle(patched=patched)
    return board


def _served(key: tuple[Any, ...], board: CachedBoard, suite: Suite) -> CachedBoard:
    """A cached board for this request (its suite: this session's)."""
    with _lock:
        if key in _entries:
            _entries.move_to_end(key)
    return CachedBoard(suite, board.pick, board.ranked, board.partial, board.include_limited, board.rendered)


def _changed_tasks(old: tuple[Any, ...], new: tuple[Any, ...]) -> set[int] | None:
    """The tasks whose board stamp moved between two board stamps; None when the models changed (or a stamp is
    not a board stamp): then the whole board is built again."""
    if len(old) != 2 or len(new) != 2 or old[1] != new[1]:
        return None

    def parts(stamp: str | None) -> dict[int, str]:
        return {int(p.split(":", 1)[0]): p for p in (stamp or "").split(",") if p}

    before, after = parts(old[0]), parts(new[0])
    return {t for t in before.keys() | after.keys() if before.get(t) != after.get(t)}


def cached_page(session: Session, key: tuple[Any, ...], render: Callable[[], T], *, task_id: int | None = None) -> T:
    """`render()`, made again only when the stamp moved. `task_id`: a leaderboard page of that task, valid while
    the task's stamp stands; else a run listing, with the live stamp, which moves with every write to any run,
    model or task. `key` must hold everything else the page shows (the task's own columns, the query, the API
    root). Read the stamp first, as `cached_board` does: a change meanwhile shows next time."""
    if task_id is not None:
        stamp = tasks_stamp(session, [task_id], active=True)
    else:
        stamp = tuple(session.execute(_LIVE_STAMP).one())
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


def _settle(*, patched: bool = False) -> None:
    """Move what is alive now (the new board's ~100,000 cells) out of the cyclic collector's reach: otherwise
    every full collection walks them (80-380 ms pauses, every ~6th request at 1,000 x 100). Collected first,
    so no garbage is kept; cells and rows hold no reference cycles, so an evicted board is still freed.

    After a patch only every SETTLE_EVERY-th time: a patch makes ~1,000 rows and a few hundred cells, and the
    full collection costs ~8 ms (more with other live objects), paid by every request while a nightly writes."""
    global _patches
    if patched:
        _patches += 1
        if _patches % SETTLE_EVERY:
            return
    gc.collect()
    gc.freeze()


def clear() -> None:
    """Forget every board and page (tests, or after a write the stamp cannot see)."""
    with _lock:
        _entries.clear()
        _pages.clear()
