"""The overall board's per-process cache: a hit equals a fresh board, and each write path our code has (a new
run, a run finishing, backfill's in-place re-sync, a model edit) moves the stamp so the next board is fresh."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update
from vlmevals.api import board_cache, overall_pages
from vlmevals.db.engine import session_scope
from vlmevals.db.models import EvalRun, Model, Suite
from vlmevals.results import regression
from vlmevals.results.overall import OverallBoard, overall_board
from vlmevals.runs import backfilled, lifecycle

from tests.vlmevals.api.conftest import add_run

pytestmark = pytest.mark.integration
TASKS = ("demo-shapes-mcq", "demo-colors-vqa", "demo-shapes-yorn")
MODELS = ("demo-tiny-idefics3", "internvl2.5-2b")
API = "/api/evals"


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


def test_a_board_is_brought_up_to_date_at_most_every_refresh_interval(runs, monkeypatch) -> None:
    """EVALS_BOARD_REFRESH_S: within it a request gets the board as it was (no stamp read, no patch); after it,
    the write shows."""
    from vlmevals.core.settings import get_settings

    engine, _ = runs
    now = [1000.0]
    monkeypatch.setattr(board_cache.time, "monotonic", lambda: now[0])
    monkeypatch.setenv("EVALS_BOARD_REFRESH_S", "0.5")
    get_settings.cache_clear()
    try:
        first, _ = _boards(engine)
        better = add_run(engine, TASKS[0], MODELS[0], score=0.99)
        now[0] += 0.4
        within, fresh = _boards(engine)
        assert within == first != fresh, "inside the interval: the board as it was"
        now[0] += 0.2
        after, fresh = _boards(engine)
        assert after == fresh and next(r for r in after if r[0] == MODELS[0])[5][TASKS[0]][0] == better
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()


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


def _full(board: OverallBoard) -> list[tuple]:
    """Everything a page shows of a board, in its order (task ranks included)."""
    return [
        (
            r.model.name,
            r.rank,
            r.average,
            r.mean_rank,
            r.covered,
            *sorted((t, c.run_id, c.value, c.task_rank, c.sample_limit) for t, c in r.cells.items()),
        )
        for r in board.ranked + board.partial
    ]


def test_a_board_patched_per_changed_task_equals_a_fresh_one(seeded, monkeypatch) -> None:
    """Random completions, ties, a lower-is-better task, a cell lost (ranked -> partial) and won back: after each
    write the cached board is patched (only the changed task's column read again, never rebuilt) and equals a
    board built from scratch."""
    import random

    engine, rng = seeded, random.Random(25)
    board_cache.clear()
    with session_scope(engine) as s:
        suite = s.scalars(select(Suite).where(Suite.name == "openvlm-core")).one()
        tasks = [m.task.name for m in suite.members]
        suite.members[0].task.higher_is_better, suite.members[0].task.metric_scale = False, 100.0
        s.add_all(Model(name=f"patch-{i}", display_name=f"Patch {i % 3}", vlmeval_model=f"patch_{i}") for i in range(6))
    models = [f"patch-{i}" for i in range(6)]
    for t in tasks:
        for m in models[:5]:
            add_run(engine, t, m, score=rng.choice((0.2, 0.5, 0.8)))
    built = []
    real = board_cache.overall_board
    monkeypatch.setattr(board_cache, "overall_board", lambda *a, **k: built.append(1) or real(*a, **k))

    def check() -> dict[str, int]:
        with session_scope(engine) as s:
            suite = s.scalars(select(Suite).where(Suite.name == "openvlm-core")).one()
            for pick in ("best", "latest"):
                cached, fresh = board_cache.cached_board(s, suite, pick), overall_board(s, suite, pick)
                got = _full(cached)
                assert got == _full(fresh), pick
                # its page, from the JSON kept on the cells it shares with earlier boards, is the fresh body's
                page = overall_pages.page(API, suite, cached, "rank", None, 10, 0).plain
                assert page == overall_pages.body(API, suite, fresh, "rank", None, 10, 0).model_dump_json().encode()
        return {row[0]: row[4] for row in got}  # model -> coverage

    check()
    for step in range(25):
        task, model = (tasks[3], models[0]) if step == 20 else (rng.choice(tasks), rng.choice(models))
        if step == 10:  # a model loses a cell: partial until a run of the pair counts again
            task, model = tasks[3], models[0]
            with session_scope(engine) as s:
                pair = s.scalars(select(EvalRun.id).where(EvalRun.task.has(name=task), EvalRun.model.has(name=model)))
                for run_id in pair.all():
                    backfilled.resync_backfilled(s.connection(), run_id, {"status": "failed"}, "re-synced")
        else:
            add_run(engine, task, model, score=rng.choice((0.2, 0.5, 0.8, 35.0)))
        coverage = check()
        if step == 10:
            assert coverage[models[0]] == len(tasks) - 1, "ranked -> partial"
    assert coverage[models[0]] == len(tasks) and len(coverage) == 6, coverage
    assert len(built) == 2, "one build per pick; every later board was patched"
