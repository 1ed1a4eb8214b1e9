"""The board entries (runs.board_entries) against a recomputation: random histories written through the real write
paths (create, complete, fail, cancel, refused, regression verdicts, backfill inserts and re-syncs), then every
board (task leaderboard both picks and scopes, overall cells, checkpoint scores) compared with a plain-Python
choice over all runs, and the stored table with the SQL recomputation (`differences`, `vlmevals db verify-boards`)."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select
from vlmevals.core.vocabulary import TriggeredBy
from vlmevals.db.engine import session_scope
from vlmevals.db.models import BoardEntry, Checkpoint, EvalRun, Model, Suite, SuiteTask, Task
from vlmevals.results.checkpoint_scores import checkpoint_scores
from vlmevals.results.leaderboard import leaderboard
from vlmevals.results.overall import overall_board
from vlmevals.runs import backfilled, board_entries, lifecycle

pytestmark = pytest.mark.integration
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
TASKS = {"up": True, "down": False}  # name: higher_is_better
# "b" and "B" share a display name up to case: ties on the score are listed by lower(display name), then name
MODELS = {"a": "Alpha", "b": "beta", "c": "Beta", "d": "delta"}
SCORES = (0.2, 0.5, 0.5, 0.8)  # few values: ties


@dataclass
class World:
    engine: Any
    tasks: list[str]
    models: list[str]
    checkpoints: dict[str, list[int]]  # model name -> its checkpoint ids


def _world(engine: Any) -> World:
    with session_scope(engine) as s:
        tasks = [
            Task(name=n, display_name=n.upper(), vlmeval_data="MMBench_DEV_EN", higher_is_better=h, metric_scale=1.0)
            for n, h in TASKS.items()
        ]
        suite = Suite(name="both", display_name="Both")
        suite.members = [SuiteTask(task=t, position=i, weight=1.0) for i, t in enumerate(tasks)]
        s.add(suite)
        s.flush()
        models = [Model(name=n, display_name=d, vlmeval_model="m", suite_id=suite.id) for n, d in MODELS.items()]
        s.add_all(models)
        s.flush()
        ckpts = [
            Checkpoint(model_id=models[0].id, step=step, weights_path=f"/ckpt/{step}", created_at=T0)
            for step in (10, 20)
        ]
        s.add_all(ckpts)
        s.flush()
        return World(engine, list(TASKS), list(MODELS), {"a": [c.id for c in ckpts]})


def _finished(rng: random.Random) -> dt.datetime:
    return T0 + dt.timedelta(hours=rng.randrange(6))  # few values: ties on finished_at too


def _one_step(w: World, rng: random.Random, backfill_no: list[int]) -> None:
    """One unit of work of a random kind, each through the code path that owns it."""
    task, model = rng.choice(w.tasks), rng.choice(w.models)
    kind = rng.choice(["complete", "complete", "complete", "fail", "cancel", "refused", "backfill", "resync"])
    with session_scope(w.engine) as s:
        if kind == "backfill":
            backfill_no[0] += 1
            status = rng.choice(["completed", "completed", "failed"])
            row = {
                "task_id": s.scalar(select(Task.id).where(Task.name == task)),
                "model_id": s.scalar(select(Model.id).where(Model.name == model)),
                "status": status,
                "triggered_by": TriggeredBy.BACKFILL,
                "options": {},
                "finished_at": _finished(rng),
                "primary_metric": rng.choice(SCORES) if status == "completed" else None,
                "metrics": {},
                "fingerprint": {},
                "source_path": f"/results/{backfill_no[0]}",
                "source_mtime_ns": 1,
            }
            backfilled.insert_backfilled(s.connection(), [row])
            return
        if kind == "resync":
            run_id = s.scalar(select(EvalRun.id).where(EvalRun.source_path.is_not(None)).order_by(EvalRun.id.desc()))
            if run_id is not None:
                values = {"source_mtime_ns": 2, "status": "completed", "primary_metric": rng.choice(SCORES)}
                values["finished_at"] = _finished(rng)
                backfilled.resync_backfilled(s.connection(), run_id, values, "re-synced in the test")
            return
        if kind == "refused":
            lifecycle.record_refused(
                s, task, model, triggered_by="api", user=None, dag_id="d", dag_run_id=f"r{rng.random()}", error="no"
            )
            return
        checkpoint = rng.choice([None, *w.checkpoints.get(model, [])])
        options = {"limit": 5} if rng.random() < 0.2 else None
        run = lifecycle.create_run(
            s, task, model, triggered_by="api", forced=True, options=options, checkpoint_id=checkpoint
        )
        if kind == "fail":
            lifecycle.mark_failed(s, run.id, "boom")
        elif kind == "cancel":
            lifecycle.mark_cancelled(s, run.id)
        elif rng.random() < 0.9:  # else left queued: an unranked model's latest status
            score = rng.choice(SCORES)
            lifecycle.mark_completed(s, run.id, primary_metric=score, metrics={}, extra={"finished_at": _finished(rng)})
            if rng.random() < 0.3:
                detail = {"kind": "checkpoint_drop"} if checkpoint else {"method": "absolute"}
                lifecycle.record_regression(s, run.id, regression=True, detail=detail, baseline_run_id=run.id)


def _runs(s: Any) -> list[EvalRun]:
    return list(s.scalars(select(EvalRun).order_by(EvalRun.id)))


def _chosen(runs: list[EvalRun], task: Task, pick: str, include_limited: bool) -> EvalRun | None:
    """The reference: the pair's best (task's direction, then latest, then highest id) or latest counted run."""
    ok = [
        r
        for r in runs
        if r.status == "completed" and r.primary_metric is not None and (include_limited or r.sample_limit is None)
    ]
    if not ok:
        return None
    sign = 1.0 if task.higher_is_better else -1.0

    def key(r: EvalRun) -> tuple[float, dt.datetime, int]:
        assert r.finished_at is not None and r.primary_metric is not None
        return (sign * r.primary_metric if pick == "best" else 0.0, r.finished_at, r.id)

    return max(ok, key=key)


def _check(w: World) -> None:
    with session_scope(w.engine) as s:
        assert board_entries.differences(s.connection()) == []
        runs, models = _runs(s), list(s.scalars(select(Model)))
        tasks = list(s.scalars(select(Task).order_by(Task.id)))
        for task in tasks:
            of_task = [r for r in runs if r.task_id == task.id]
            for pick in ("best", "latest"):
                for limited in (False, True):
                    chosen = {
                        m.id: _chosen([r for r in of_task if r.model_id == m.id], task, pick, limited) for m in models
                    }
                    _check_leaderboard(s, task, pick, limited, chosen, of_task, models)
        _check_overall(s, runs, tasks, models)
        _check_checkpoints(s, runs, tasks)


def _check_overall(s: Any, runs: list[EvalRun], tasks: list[Task], models: list[Model]) -> None:
    for pick in ("best", "latest"):
        for limited in (False, True):
            board = overall_board(s, s.scalars(select(Suite)).one(), pick, include_limited=limited)  # type: ignore[arg-type]
            got = {(row.model.id, t): c.run_id for row in (*board.ranked, *board.partial) for t, c in row.cells.items()}
            want = {}
            for task in tasks:
                for m in models:
                    run = _chosen([r for r in runs if (r.task_id, r.model_id) == (task.id, m.id)], task, pick, limited)
                    if run is not None:
                        want[(m.id, task.name)] = run.id
            assert got == want


def _check_checkpoints(s: Any, runs: list[EvalRun], tasks: list[Task]) -> None:
    scores = checkpoint_scores(s, "a", "both")
    for row in scores.checkpoints:
        for task in tasks:
            mine = [r for r in runs if (r.task_id, r.checkpoint_id) == (task.id, row.id)]
            run = _chosen(mine, task, "latest", False)
            cell = row.scores[task.name]
            assert (cell.run_id if cell else None) == (run.id if run else None)
            if cell is not None and run is not None:
                flagged = run.regression and (run.regression_detail or {}).get("kind") == "checkpoint_drop"
                assert cell.drop == flagged


def _check_leaderboard(
    s: Any,
    task: Task,
    pick: str,
    limited: bool,
    chosen: dict[int, EvalRun | None],
    of_task: list[EvalRun],
    models: list[Model],
) -> None:
    by_id = {m.id: m for m in models}
    sign = 1.0 if task.higher_is_better else -1.0
    ranked = sorted(
        (
            (sign * run.primary_metric, by_id[mid])
            for mid, run in chosen.items()
            if run and run.primary_metric is not None
        ),
        key=lambda x: (-x[0], x[1].display_name.lower(), x[1].name),
    )
    want = [(1 + sum(1 for v, _ in ranked if v > value), m.name, chosen[m.id].id) for value, m in ranked]  # type: ignore[union-attr]
    board = leaderboard(s, task, pick, include_limited=limited)  # type: ignore[arg-type]
    assert [(e.rank, e.model.name, e.run.id) for e in board.entries] == want
    assert board.count == len(want)
    unranked = []
    for m in sorted(models, key=lambda m: m.name):
        mine = [r for r in of_task if r.model_id == m.id]
        if mine and chosen[m.id] is None:
            last = max(mine, key=lambda r: r.id)
            unranked.append((m.name, last.id, last.status))
    assert [(u.model.name, u.latest_run_id, u.latest_status) for u in board.unranked] == unranked


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_boards_from_the_entries_match_a_recomputation_over_random_histories(engine: Any, seed: int) -> None:
    w, rng, backfill_no = _world(engine), random.Random(seed), [0]
    for step in range(60):
        _one_step(w, rng, backfill_no)
        if step % 20 == 19:
            _check(w)


def test_differences_name_a_stale_entry_and_rebuild_repairs_it(engine: Any) -> None:
    w = _world(engine)
    with session_scope(engine) as s:
        run = lifecycle.create_run(s, "up", "a", triggered_by="api")
        lifecycle.mark_completed(s, run.id, primary_metric=0.5, metrics={})
        run_id = run.id
    with engine.begin() as conn:  # a change by hand in SQL, which no hook sees
        conn.execute(EvalRun.__table__.update().where(EvalRun.id == run_id).values(primary_metric=0.7))
    with engine.begin() as conn:
        found = board_entries.differences(conn)
        assert found and all(line.startswith("up x a, ") for line in found)
        assert "same run, other values" in found[0]
        assert board_entries.rebuild(conn) == 4  # best/latest x full/limited-included
        assert board_entries.differences(conn) == []
        assert conn.scalar(select(BoardEntry.score).where(BoardEntry.run_id == run_id).limit(1)) == 0.7
    assert w.tasks == list(TASKS)
