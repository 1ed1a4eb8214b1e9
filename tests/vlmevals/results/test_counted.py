"""One rule for what counts (results/counted.py): a full-dataset run. The issue's case, on the test PostgreSQL: a
model's full run scores 10, a later smoke test with `limit: 5` scores 20; every board, history and baseline keeps
to the full run unless limited runs are asked for, and then they are marked."""

from __future__ import annotations

from typing import Any

import pytest
from vlmevals.catalogue.store import get_model, get_task
from vlmevals.catalogue.suites import get_suite
from vlmevals.db.engine import session_scope
from vlmevals.db.models import Checkpoint, EvalRun
from vlmevals.nightly import planning
from vlmevals.results import regression
from vlmevals.results.checkpoint_scores import checkpoint_scores
from vlmevals.results.leaderboard import leaderboard, score_history
from vlmevals.results.overall import overall_board
from vlmevals.runs import lifecycle

pytestmark = pytest.mark.integration
TASK, MODEL, SUITE = "demo-shapes-yorn", "demo-tiny-idefics3", "demo"  # 0-100 scale, tolerance 1.0


def _run(
    engine: Any,
    score: float,
    *,
    limit: int | None = None,
    checkpoint_id: int | None = None,
    triggered_by: str = "api",
) -> int:
    options = {"limit": limit} if limit else None
    with session_scope(engine) as s:
        run = lifecycle.create_run(
            s, TASK, MODEL, triggered_by=triggered_by, options=options, checkpoint_id=checkpoint_id
        )
        run_id = run.id
    with session_scope(engine) as s:
        lifecycle.mark_completed(s, run_id, primary_metric=score, metrics={})
    return run_id


@pytest.fixture()
def full_then_limited(seeded: Any) -> tuple[Any, int, int]:
    """The issue's pair: the full run (10.00) first, the smoke test (20.00 on 5 samples) after it."""
    return seeded, _run(seeded, 10.0), _run(seeded, 20.0, limit=5)


def test_the_limit_option_is_a_queryable_column(full_then_limited: tuple[Any, int, int]) -> None:
    engine, full, limited = full_then_limited
    with session_scope(engine) as s:
        assert s.get_one(EvalRun, full).sample_limit is None
        assert s.get_one(EvalRun, limited).sample_limit == 5


@pytest.mark.parametrize("pick", ["best", "latest"])
def test_task_board_picks_the_full_run_and_shows_the_limited_one_on_request(
    full_then_limited: tuple[Any, int, int], pick: Any
) -> None:
    engine, full, limited = full_then_limited
    with session_scope(engine) as s:
        task = get_task(s, TASK)
        board = leaderboard(s, task, pick)
        assert [(e.run.id, e.run.primary_metric) for e in board.entries] == [(full, 10.0)]
        assert board.compared[0][0] == full and not board.include_limited
        asked = leaderboard(s, task, pick, include_limited=True)
        assert [(e.run.id, e.run.sample_limit) for e in asked.entries] == [(limited, 5)]
        assert asked.include_limited


def test_a_model_with_only_limited_runs_is_unranked_by_default(seeded: Any) -> None:
    limited = _run(seeded, 20.0, limit=5)
    with session_scope(seeded) as s:
        board = leaderboard(s, get_task(s, TASK))
        assert board.entries == [] and board.count == 0
        assert [(u.model.name, u.latest_run_id, u.latest_status) for u in board.unranked] == [
            (MODEL, limited, "completed")
        ]
        assert leaderboard(s, get_task(s, TASK), include_limited=True).unranked == []


def test_score_history_leaves_limited_runs_out(full_then_limited: tuple[Any, int, int]) -> None:
    engine, full, limited = full_then_limited
    later = _run(engine, 12.0)
    with session_scope(engine) as s:
        task = get_task(s, TASK)
        (series,) = score_history(s, task)
        assert [(p.run_id, p.score) for p in series.points] == [(full, 10.0), (later, 12.0)]
        (asked,) = score_history(s, task, include_limited=True)
        assert [(p.run_id, p.sample_limit) for p in asked.points] == [(full, None), (limited, 5), (later, None)]


@pytest.mark.parametrize("pick", ["best", "latest"])
def test_overall_board_cells_are_full_runs(full_then_limited: tuple[Any, int, int], pick: Any) -> None:
    engine, full, limited = full_then_limited
    with session_scope(engine) as s:
        suite = get_suite(s, SUITE)
        (row,) = overall_board(s, suite, pick).partial  # one task of three covered
        assert (row.cells[TASK].run_id, row.cells[TASK].score, row.cells[TASK].sample_limit) == (full, 10.0, None)
        asked = overall_board(s, suite, pick, include_limited=True)
        assert (asked.partial[0].cells[TASK].run_id, asked.partial[0].cells[TASK].sample_limit) == (limited, 5)
        assert asked.include_limited


def _checkpoint(engine: Any, step: int) -> int:
    with session_scope(engine) as s:
        cp = Checkpoint(model_id=get_model(s, MODEL).id, step=step, weights_path="/w")
        s.add(cp)
        s.flush()
        return cp.id


def test_checkpoint_scores_keep_to_full_runs(seeded: Any) -> None:
    cp = _checkpoint(seeded, 100)
    full = _run(seeded, 10.0, checkpoint_id=cp)
    _run(seeded, 20.0, limit=5, checkpoint_id=cp)  # the latest of the checkpoint, but a smoke test
    with session_scope(seeded) as s:
        (row,) = checkpoint_scores(s, MODEL, SUITE).checkpoints
    cell = row.scores[TASK]
    assert cell is not None and (cell.run_id, cell.score) == (full, 10.0) and row.coverage == 1


def test_nightly_baseline_is_never_a_limited_run(seeded: Any) -> None:
    full = _run(seeded, 10.0, triggered_by="nightly")
    limited = _run(seeded, 20.0, limit=5)
    nightly = _run(seeded, 10.0, triggered_by="nightly")  # equal to the full run: no regression
    with session_scope(seeded) as s:
        v = regression.check_run(s, nightly)
    assert v is not None and v.baseline_run_id == full and not v.regression
    with session_scope(seeded) as s:
        assert regression.check_run(s, limited, force=True) is None  # 5 samples are not checked either
    with session_scope(seeded) as s:
        assert s.get_one(EvalRun, limited).baseline_run_id is None


def test_checkpoint_drop_baseline_is_never_a_limited_run(seeded: Any) -> None:
    c1, c2, c3 = _checkpoint(seeded, 1), _checkpoint(seeded, 2), _checkpoint(seeded, 3)
    first = _run(seeded, 10.0, checkpoint_id=c1)
    _run(seeded, 20.0, limit=5, checkpoint_id=c2)  # step 2 only has a smoke test: step 1 is the one before 3
    third = _run(seeded, 10.0, checkpoint_id=c3)
    with session_scope(seeded) as s:
        v = regression.check_run(s, third)
    assert v is not None and v.baseline_run_id == first and not v.regression


def test_nightly_skip_logic_ignores_limited_runs(full_then_limited: tuple[Any, int, int]) -> None:
    engine, full, _ = full_then_limited
    with session_scope(engine) as s:
        last = planning.last_completed(s, get_task(s, TASK).id, get_model(s, MODEL).id)
        assert last is not None and last.id == full
