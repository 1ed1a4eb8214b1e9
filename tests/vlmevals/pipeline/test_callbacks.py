"""The fan-out DAGs' failure callback: an eval run whose DAG run could not be started is marked failed."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from vlmevals.airflow import hooks
from vlmevals.db.engine import session_scope
from vlmevals.pipeline.callbacks import trigger_failed
from vlmevals.runs import lifecycle

pytestmark = pytest.mark.integration


@pytest.fixture
def run_id(seeded: Any, monkeypatch: pytest.MonkeyPatch) -> int:
    """A queued run, and the callback's engine pointed at this session's database."""
    monkeypatch.setattr(hooks, "engine_for_tasks", lambda: seeded)
    with session_scope(seeded) as s:
        return lifecycle.create_run(s, "demo-shapes-mcq", "demo-tiny-idefics3", triggered_by="nightly").id


def _run(engine: Any, run_id: int) -> tuple[str, str | None]:
    with session_scope(engine) as s:
        run = lifecycle.get_run(s, run_id)
        return run.status, run.error


def test_marks_the_eval_run_failed_with_the_reason(seeded: Any, run_id: int) -> None:
    task = SimpleNamespace(conf={"eval_run_id": str(run_id)})
    trigger_failed("nightly DAG")({"task": task, "exception": RuntimeError("DAG paused")})
    assert _run(seeded, run_id) == ("failed", "the nightly DAG could not trigger eval_run: DAG paused")


def test_without_an_eval_run_nothing_is_marked(seeded: Any, run_id: int) -> None:
    trigger_failed("eval_suite DAG")({"task": SimpleNamespace(conf={})})
    trigger_failed("eval_suite DAG")({})
    assert _run(seeded, run_id) == ("queued", None)
