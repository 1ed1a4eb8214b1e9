"""The fan-out DAGs' failure callback: an eval run whose DAG run could not be started is marked failed."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from vlmevals.airflow import hooks
from vlmevals.pipeline.callbacks import trigger_failed
from vlmevals.runs import lifecycle


@pytest.fixture
def failed(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, int, str]]:
    calls: list[tuple[Any, int, str]] = []
    monkeypatch.setattr(hooks, "engine_for_tasks", lambda: "engine")
    monkeypatch.setattr(lifecycle, "mark_failed", lambda e, run_id, error: calls.append((e, run_id, error)) or True)
    return calls


def test_marks_the_eval_run_failed_with_the_reason(failed: list[tuple[Any, int, str]]) -> None:
    task = SimpleNamespace(conf={"eval_run_id": "7"})
    trigger_failed("nightly DAG")({"task": task, "exception": RuntimeError("DAG paused")})
    assert failed == [("engine", 7, "the nightly DAG could not trigger eval_run: DAG paused")]


def test_without_an_eval_run_nothing_is_marked(failed: list[tuple[Any, int, str]]) -> None:
    trigger_failed("eval_suite DAG")({"task": SimpleNamespace(conf={})})
    trigger_failed("eval_suite DAG")({})
    assert failed == []
