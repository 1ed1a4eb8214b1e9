"""`vlmevals trigger`'s wait: it follows the DAG run and the eval run row, then prints the outcome."""

from __future__ import annotations

import io
from types import SimpleNamespace

import httpx
import pytest
from rich.console import Console
from vlmevals.cli import output
from vlmevals.cli import stack as cli
from vlmevals.db.engine import session_scope
from vlmevals.runs import lifecycle as runs

pytestmark = pytest.mark.integration


def test_wait_and_report_prints_the_finished_run(seeded, db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with session_scope(seeded) as s:
        run_id = runs.create_run(
            s, "demo-shapes-mcq", "demo-tiny-idefics3", triggered_by="airflow_rest", dag_run_id="d1"
        ).id
    with session_scope(seeded) as s:
        runs.mark_running(s, run_id, attempt=1)
        runs.mark_completed(s, run_id, primary_metric=0.25, metrics={"Overall": 0.25})
    api = httpx.Client(
        base_url="http://airflow.test",
        transport=httpx.MockTransport(lambda r: httpx.Response(200, json={"state": "success"})),
    )
    out = io.StringIO()
    monkeypatch.setattr(output, "console", Console(file=out, width=40, soft_wrap=True))
    stack = SimpleNamespace(database_url=db_url, api_url="http://airflow.test")
    cli._wait_and_report(stack, api, "d1", timeout_s=30)
    text = out.getvalue()
    assert f"eval run {run_id}: completed" in text and "0.2500" in text
    assert "Airflow run: http://airflow.test/dags/eval_run/runs/d1\n" in text
