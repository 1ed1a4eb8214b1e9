from __future__ import annotations

from pathlib import Path

import pytest
from vlmevals.core.errors import InvalidRequestError, NotFoundError
from vlmevals.db.engine import session_scope
from vlmevals.runs import lifecycle as runs

pytestmark = pytest.mark.integration


def _new(engine, **kw) -> int:
    with session_scope(engine) as s:
        return runs.create_run(s, "demo-shapes-mcq", "demo-tiny-idefics3", triggered_by="airflow_rest", **kw).id


def test_life_cycle_and_history(seeded) -> None:
    run_id = _new(seeded, user="alice", options={"limit": 5})
    with session_scope(seeded) as s:
        assert runs.mark_running(s, run_id, attempt=1)
        runs.set_progress(s, run_id, 7, 5)  # clamped, never above the total
        assert runs.mark_completed(s, run_id, primary_metric=0.5, metrics={"table": {"Overall": 0.5}})
        assert not runs.mark_failed(s, run_id, "late callback")  # terminal rows stay as they are
    with session_scope(seeded) as s:
        run = runs.get_run(s, run_id)
        assert (run.status, run.primary_metric, run.progress_done, run.error) == ("completed", 0.5, 5, None)
        assert run.options == {"limit": 5, "reuse": True}
        folder = Path(run.artifacts_dir)
        assert folder.parent.name == "runs" and folder.name.split("-")[0] == str(run_id)
        assert [e.status for e in run.events] == ["queued", "running", "completed"]
        assert run.triggered_by_user == "alice" and run.finished_at >= run.started_at


def test_cancelled_is_not_overwritten(seeded) -> None:
    run_id = _new(seeded)
    with session_scope(seeded) as s:
        assert runs.mark_cancelled(s, run_id, user="bob")
    with session_scope(seeded) as s:  # late writers, each in a transaction of its own
        assert not runs.mark_running(s, run_id, 1)
    with session_scope(seeded) as s:
        assert not runs.mark_failed(s, run_id, "task killed")
    with session_scope(seeded) as s:
        assert runs.get_run(s, run_id).status == "cancelled"


def test_failure_message_kept_readable(seeded) -> None:
    run_id = _new(seeded)
    with session_scope(seeded) as s:
        runs.mark_failed(s, run_id, "x" * 20000)
    with session_scope(seeded) as s:
        err = runs.get_run(s, run_id).error
    assert err.endswith("[truncated]") and len(err) < 9000


def test_bad_requests(seeded) -> None:
    with session_scope(seeded) as s:
        with pytest.raises(NotFoundError):
            runs.create_run(s, "demo-shapes-mcq", "ghost", triggered_by="airflow_rest")
        with pytest.raises(InvalidRequestError):
            runs.create_run(s, "demo-shapes-mcq", "demo-tiny-idefics3", triggered_by="pigeon")
        with pytest.raises(ValueError, match="limit"):
            runs.create_run(
                s, "demo-shapes-mcq", "demo-tiny-idefics3", triggered_by="airflow_rest", options={"limit": 0}
            )
    run_id = _new(seeded, dag_id="eval_run", dag_run_id="manual__a")
    with session_scope(seeded) as s, pytest.raises(InvalidRequestError, match="already belongs"):
        runs.adopt_run(s, run_id, dag_id="eval_run", dag_run_id="manual__b")


def test_artifacts_folder_of_another_run_is_never_reused(seeded) -> None:
    run_id = _new(seeded)
    with session_scope(seeded) as s:
        first = Path(runs.get_run(s, run_id).artifacts_dir)
    first.mkdir(parents=True, exist_ok=True)
    (first / "worker_stdout.log").write_text("someone else's run")
    assert Path(runs.fresh_artifacts_dir(run_id)) != first  # ids restart when a database is recreated


def test_completion_follow_up_commits_with_it_and_its_failure_alone_is_dropped(seeded) -> None:
    """`then` (the regression check) sees the run completed inside the same transaction; if it raises, its
    writes roll back to the savepoint and the completion still commits."""
    from sqlalchemy import update
    from vlmevals.db.models import EvalRun

    seen: list[str] = []

    def flag(s) -> None:
        seen.append(runs.get_run(s, ok).status)
        s.execute(update(EvalRun).where(EvalRun.id == ok).values(regression=True))

    def broken(s) -> None:
        s.execute(update(EvalRun).where(EvalRun.id == bad).values(regression=True, regression_detail={"x": 1}))
        raise RuntimeError("comparison failed")

    ok = _new(seeded)
    with session_scope(seeded) as s:
        assert runs.mark_completed(s, ok, primary_metric=0.5, metrics={}, then=flag)
    bad = _new(seeded)
    with session_scope(seeded) as s:
        assert runs.mark_completed(s, bad, primary_metric=0.4, metrics={}, then=broken)
    called: list[int] = []
    with session_scope(seeded) as s:
        assert not runs.mark_completed(s, bad, primary_metric=0.1, metrics={}, then=lambda t: called.append(1))
    with session_scope(seeded) as s:
        assert seen == ["completed"]
        assert (runs.get_run(s, ok).status, runs.get_run(s, ok).regression) == ("completed", True)
        got = runs.get_run(s, bad)
        assert (got.status, got.regression, got.regression_detail) == ("completed", False, None)
        assert got.primary_metric == 0.4 and called == [], "no follow-up when nothing changed"


def test_transitions_join_the_callers_unit_of_work(seeded) -> None:
    """No life-cycle function commits: a caller whose unit of work fails leaves the run as it was, events too."""
    run_id = _new(seeded)
    with pytest.raises(RuntimeError, match="the step failed"), session_scope(seeded) as s:
        assert runs.mark_running(s, run_id, attempt=1)
        runs.record_preparation(s, run_id, "dataset downloaded")
        assert runs.mark_failed(s, run_id, "boom")
        raise RuntimeError("the step failed")
    with session_scope(seeded) as s:
        run = runs.get_run(s, run_id)
        assert (run.status, run.attempts, run.error) == ("queued", 0, None)
        assert [e.status for e in run.events] == ["queued"]
