"""The overall board's per-process cache: a hit equals a fresh board, and each write path our code has (a new
run, a run finishing, backfill's in-place re-sync, a model edit) moves the stamp so the next board is fresh."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update
from vlmevals.api import board_cache
from vlmevals.db.engine import session_scope
from vlmevals.db.models import EvalRun, Model, Suite
from vlmevals.results import regression
from vlmevals.results.overall import OverallBoard, overall_board
from vlmevals.runs import backfilled, lifecycle

from tests.vlmevals.api.conftest import add_run

pytestmark = pytest.mark.integration
TASKS = ("demo-shapes-mcq", "demo-colors-vqa", "demo-shapes-yorn")
MODELS = ("demo-tiny-idefics3", "internvl2.5-2b")


def _flat(board: OverallBoard) -> list[tuple]:
    return [
        (r.model.name, r.rank, r.average, r.mean_rank, r.covered, {t: (c.run_id, c.value) for t, c in r.cells.items()})
        for r in board.ranked + board.partial
    ]


def _boards(engine) -> tuple[list[tuple], list[tuple]]:
    """(cached, fresh) in one session."""
    with session_scope(engine) as s:
        suite = s.scalars(select(Suite).where(Suite.name == "demo")).one()
        return _flat(board_cache.cached_board(s, suite)), _flat(overall_board(s, suite))


def _stamp(engine) -> tuple:
    with session_scope(engine) as s:
        return board_cache.results_stamp(s)


@pytest.fixture()
def runs(seeded):
    board_cache.clear()
    ids = {(t, m): add_run(seeded, t, m, score=0.5 + 0.1 * i) for i, t in enumerate(TASKS) for m in MODELS}
    yield seeded, ids
    board_cache.clear()


def test_hit_equals_fresh_and_new_runs_show(runs) -> None:
    engine, _ = runs
    first, fresh = _boards(engine)
    assert first == fresh and len(first) == 2
    with session_scope(engine) as s:
        suite = s.scalars(select(Suite).where(Suite.name == "demo")).one()
        one, two = board_cache.cached_board(s, suite), board_cache.cached_board(s, suite)
    assert one.ranked and all(a is b for a, b in zip(one.ranked, two.ranked, strict=True))  # a hit: the same rows
    better = add_run(engine, TASKS[0], MODELS[0], score=0.99)  # a new completed run
    got, fresh = _boards(engine)
    assert got == fresh != first
    row = next(r for r in got if r[0] == MODELS[0])
    assert row[5][TASKS[0]][0] == better


def test_finishing_run_and_backfill_resync_move_the_stamp(runs) -> None:
    engine, ids = runs
    running = add_run(engine, TASKS[1], MODELS[1], status="running")
    _boards(engine)
    before = _stamp(engine)
    with session_scope(engine) as s:
        assert lifecycle.mark_completed(s, running, primary_metric=0.01, metrics={})
    assert _stamp(engine) != before
    after, fresh = _boards(engine)
    assert after == fresh
    before = _stamp(engine)
    run_id = ids[(TASKS[1], MODELS[1])]
    with session_scope(engine) as s:
        backfilled.resync_backfilled(s.connection(), run_id, {"status": "failed", "primary_metric": None}, "re-synced")
    assert _stamp(engine) != before
    resynced, fresh = _boards(engine)
    assert resynced == fresh
    row = next(r for r in resynced if r[0] == MODELS[1])
    assert row[5][TASKS[1]][0] == running  # the re-synced run no longer counts: the 0.01 run is the cell now


def test_model_edit_moves_the_stamp(runs) -> None:
    engine, _ = runs
    _boards(engine)
    with session_scope(engine) as s:
        s.execute(update(Model).where(Model.name == MODELS[0]).values(display_name="Renamed"))
    with session_scope(engine) as s:
        suite = s.scalars(select(Suite).where(Suite.name == "demo")).one()
        names = {r.model.display_name for r in board_cache.cached_board(s, suite).ranked}
    assert "Renamed" in names


def test_a_cached_board_outlives_a_rolled_back_session(runs) -> None:
    """The session that computed a board rolls back (a request that failed later): the next request's hit still
    reads its rows' models (the fuzz test found a 500 here: expired, detached Model instances)."""
    engine, _ = runs
    with pytest.raises(RuntimeError), session_scope(engine) as s:
        board_cache.cached_board(s, s.scalars(select(Suite).where(Suite.name == "demo")).one(), "latest")
        raise RuntimeError("the request fails after the board was computed")
    with session_scope(engine) as s:
        hit = board_cache.cached_board(s, s.scalars(select(Suite).where(Suite.name == "demo")).one(), "latest")
        assert sorted(r.model.name for r in hit.ranked + hit.partial) == sorted(MODELS)


def test_a_verdict_stored_after_completion_moves_the_stamp(runs) -> None:
    """ingest_metrics' re-check and a check on request store a regression flag on a completed run: its event
    moves the stamp, so cached boards and pages show the flag."""
    engine, _ = runs
    later = add_run(engine, TASKS[0], MODELS[0], score=0.1)  # a drop against the fixture's run of the pair
    before = _stamp(engine)
    with session_scope(engine) as s:
        verdict = regression.check_run(s, later, force=True)
    assert verdict is not None and verdict.regression
    assert _stamp(engine) != before
    with session_scope(engine) as s:
        last = s.get(EvalRun, later).events[-1]
        assert last.status == "completed" and "a regression" in (last.message or "")
        assert str(verdict.baseline_run_id) in (last.message or "")
