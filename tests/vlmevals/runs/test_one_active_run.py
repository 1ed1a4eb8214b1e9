"""At most one queued/running run per (task, model) unless forced, decided by PostgreSQL's partial unique index:
concurrent creates from threads (each its own connection), every trigger path's mapping of the refusal, and
the index itself when the life cycle is bypassed."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from vlmevals.airflow import dag_runs
from vlmevals.core.errors import ConflictError
from vlmevals.db.engine import session_scope
from vlmevals.db.models import ONE_ACTIVE_INDEX, EvalRun
from vlmevals.nightly import planning as nightly
from vlmevals.pipeline import queue as queue_module
from vlmevals.pipeline.queue import queue_step
from vlmevals.runs import lifecycle as runs
from vlmevals.runs import triggering

pytestmark = pytest.mark.integration
MCQ, DEMO = "demo-shapes-mcq", "demo-tiny-idefics3"
THREADS = 12


def _create(engine, **kw: Any) -> int:
    with session_scope(engine) as s:
        return runs.create_run(s, MCQ, DEMO, triggered_by="airflow_rest", **kw).id


def _active(engine) -> list[EvalRun]:
    with session_scope(engine) as s:
        rows = s.scalars(select(EvalRun).where(EvalRun.status.in_(("queued", "running")), EvalRun.forced.is_(False)))
        return list(rows)


def _race(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run the calls at once (released by one barrier); each result or the exception it raised."""
    barrier = threading.Barrier(len(calls))
    out: list[Any] = [None] * len(calls)

    def go(i: int) -> None:
        barrier.wait()
        try:
            out[i] = calls[i]()
        except Exception as err:  # collected and asserted on by the caller
            out[i] = err

    threads = [threading.Thread(target=go, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return out


def test_concurrent_creates_one_winner_others_told_its_id(seeded) -> None:
    started = time.perf_counter()
    got = _race([lambda: _create(seeded) for _ in range(THREADS)])
    winners = [g for g in got if isinstance(g, int)]
    refused = [g for g in got if isinstance(g, ConflictError)]
    assert len(winners) == 1 and len(refused) == THREADS - 1, got
    assert {e.existing_id for e in refused} == {winners[0]}
    assert all("force=true" in str(e) and f"eval run {winners[0]}" in str(e) for e in refused)
    assert [r.id for r in _active(seeded)] == winners
    print(f"\n{THREADS} concurrent creates: 1 run, {len(refused)} refused in {time.perf_counter() - started:.2f} s")


def test_forced_runs_are_exempt_and_a_finished_run_frees_the_pair(seeded) -> None:
    first = _create(seeded)
    forced = _create(seeded, forced=True)
    with pytest.raises(ConflictError) as err:
        _create(seeded)
    assert err.value.existing_id == first and forced != first
    with session_scope(seeded) as s:
        assert runs.mark_completed(s, first, primary_metric=0.5, metrics={})
    again = _create(seeded)  # the forced run still active does not count
    assert {r.id for r in _active(seeded)} == {again}


def test_refusal_keeps_the_callers_session_usable(seeded) -> None:
    first = _create(seeded)
    with session_scope(seeded) as s:
        with pytest.raises(ConflictError):
            runs.create_run(s, MCQ, DEMO, triggered_by="airflow_rest")
        assert s.scalar(select(func.count()).select_from(EvalRun)) == 1  # the savepoint rolled back alone
    assert [r.id for r in _active(seeded)] == [first]


def test_the_index_holds_when_the_life_cycle_is_bypassed(seeded) -> None:
    _create(seeded)
    insert = text(
        "INSERT INTO eval_runs (task_id, model_id, status, triggered_by) "
        "SELECT task_id, model_id, 'running', 'airflow_rest' FROM eval_runs LIMIT 1"
    )
    with pytest.raises(IntegrityError, match=ONE_ACTIVE_INDEX), seeded.begin() as conn:
        conn.execute(insert)


def test_airflow_rest_duplicate_fails_at_queue_with_its_own_row(seeded) -> None:
    first = _create(seeded)
    conf = {"task": MCQ, "model": DEMO, "triggered_by": "airflow_rest"}
    with pytest.raises(ConflictError) as err:
        queue_step(seeded, conf, dag_id="eval_run", dag_run_id="manual__dup", run_type="manual", user="admin")
    assert err.value.existing_id == first and '"force": true' in str(err.value)
    with session_scope(seeded) as s:
        row = s.scalar(select(EvalRun).where(EvalRun.dag_run_id == "manual__dup"))
        assert row is not None and row.status == "failed" and f"eval run {first}" in (row.error or "")
        assert [e.status for e in row.events] == ["failed"] and row.triggered_by_user == "admin"
    assert [r.id for r in _active(seeded)] == [first]


def test_nightly_skips_a_pair_another_path_won(seeded) -> None:
    first = _create(seeded)
    d = nightly.Decision(MCQ, DEMO, "trigger", "new", "no completed run yet")
    with session_scope(seeded) as s:
        assert nightly.create_runs(s, [d], nightly_run_id="scheduled__x") == []
    assert (d.action, d.reason, d.last_run_id, d.eval_run_id) == ("skip", "active", first, None)
    assert d.detail == f"eval run {first} of {MCQ} x {DEMO} is already queued"


def test_nightly_retry_triggers_what_its_earlier_attempt_recorded(seeded) -> None:
    d = nightly.Decision(MCQ, DEMO, "trigger", "new", "no completed run yet")
    with session_scope(seeded) as s:
        (made,) = nightly.create_runs(s, [d], nightly_run_id="scheduled__2026-12-02T02:00:00+00:00")
        assert nightly.pending_from_earlier_attempt(s, "scheduled__2026-12-02T02:00:00+00:00") == [made]
        assert nightly.pending_from_earlier_attempt(s, "scheduled__other") == []


def test_every_path_at_once_one_active_run(seeded, monkeypatch) -> None:
    """Plugin (Airflow's DAG-run creation stubbed), Airflow REST through `queue`, and nightly, for one pair."""
    monkeypatch.setattr(dag_runs, "create_dag_run", lambda dag_run_id, conf, user: dag_run_id)
    monkeypatch.setattr(queue_module, "_check", lambda settings, run_id, engine: (1, "test", 10))  # no VLMEvalKit

    def plugin() -> int:
        return triggering.trigger(seeded, MCQ, DEMO, user="alice").run_id

    def rest(i: int) -> Callable[[], Any]:
        conf = {"task": MCQ, "model": DEMO, "triggered_by": "airflow_rest"}
        return lambda: queue_step(
            seeded, conf, dag_id="eval_run", dag_run_id=f"manual__{i}", run_type="manual", user=None
        )

    def night(i: int) -> Callable[[], Any]:
        d = nightly.Decision(MCQ, DEMO, "trigger", "new", "no completed run yet")

        def plan() -> Any:
            with session_scope(seeded) as s:
                return nightly.create_runs(s, [d], nightly_run_id=f"scheduled__{i}") or d

        return plan

    calls = [plugin] * 4 + [rest(i) for i in range(4)] + [night(i) for i in range(4)]
    got = _race(calls)
    (active,) = _active(seeded)
    conflicts = [g for g in got if isinstance(g, ConflictError)]
    skipped = [g for g in got if isinstance(g, nightly.Decision)]
    winners = [g for g in got if isinstance(g, (int, dict)) or (isinstance(g, list) and g)]
    assert len(winners) == 1 and len(conflicts) + len(skipped) == len(calls) - 1, got
    assert all(e.existing_id == active.id for e in conflicts)
    assert all(d.reason == "active" and d.last_run_id == active.id for d in skipped)
    with session_scope(seeded) as s:
        unbound = s.scalar(select(func.count()).select_from(EvalRun).where(EvalRun.dag_run_id.is_(None)))
    assert unbound == 0, "every run row names its DAG run"
