"""Task callbacks the fan-out DAGs share. Import-light: DAG files import this at parse time."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def trigger_failed(dag_label: str) -> Callable[[dict[str, Any]], None]:
    """An on_failure_callback for a TriggerDagRunOperator mapped over eval runs: a run whose eval_run DAG run
    could not be started is marked failed instead of staying queued forever."""

    def callback(context: dict[str, Any]) -> None:
        from vlmevals.airflow.hooks import engine_for_tasks  # at run time only: keeps DAG parsing light
        from vlmevals.db.engine import session_scope
        from vlmevals.runs.lifecycle import mark_failed

        conf = getattr(context.get("task"), "conf", None) or {}
        if conf.get("eval_run_id"):
            reason = context.get("exception") or "see its task log"
            with session_scope(engine_for_tasks()) as s:
                mark_failed(s, int(conf["eval_run_id"]), f"the {dag_label} could not trigger eval_run: {reason}")

    return callback
