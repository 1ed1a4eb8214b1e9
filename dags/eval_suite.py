"""
### Evaluate a model on a suite

One eval run per task of the suite (see `GET /api/evals/suites`). `plan` records a queued eval run for every
task whose (task, model) pair is not already queued or running (those are logged and left alone: the per-pair
duplicate rule), then `trigger_eval_run` starts one `eval_run` DAG run per recorded run. The form's defaults
(the `demo` suite, the demo model) submit as they are. Read the result on the suite's overall board:
`GET /api/evals/suites/{suite}/leaderboard`.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import Param, dag, get_current_context, task
from vlmevals.core.constants import EVAL_RUN_DAG_ID
from vlmevals.pipeline.callbacks import trigger_failed

if TYPE_CHECKING:
    from sqlalchemy import Engine

SLUG = r"^[a-z0-9][a-z0-9._-]{0,127}$"


def _engine() -> Engine:
    from vlmevals.airflow.hooks import engine_for_tasks

    return engine_for_tasks()


@dag(
    dag_id="eval_suite",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    doc_md=__doc__,
    tags=["evals"],
    params={
        "suite": Param("demo", type="string", pattern=SLUG, title="Suite", description="catalogue name of the suite"),
        "model": Param(
            "demo-tiny-idefics3", type="string", pattern=SLUG, title="Model", description="catalogue name of the model"
        ),
    },
)
def eval_suite() -> None:
    @task
    def plan() -> list[dict[str, Any]]:
        import logging

        from vlmevals.db.engine import session_scope
        from vlmevals.runs.suite_runs import create_suite_runs

        context = get_current_context()
        params, dag_run = context["params"], context["dag_run"]
        with session_scope(_engine()) as s:  # the unit of work: every task's row, or none
            kwargs, done = create_suite_runs(
                s,
                str(params["suite"]),
                str(params["model"]),
                parent_run_id=dag_run.run_id,
                user=dag_run.triggering_user_name,
            )
        log = logging.getLogger("vlmevals.runs.suite_runs")
        for e in done.started:
            log.info("STARTED %s x %s -> eval run %s", e["task"], done.model, e["run_id"])
        for e in done.already_active:
            log.info("ALREADY ACTIVE %s x %s: eval run %s is %s", e["task"], done.model, e["run_id"], e["status"])
        return kwargs

    TriggerDagRunOperator.partial(
        task_id="trigger_eval_run",
        trigger_dag_id=EVAL_RUN_DAG_ID,
        logical_date=None,
        wait_for_completion=False,
        on_failure_callback=trigger_failed("eval_suite DAG"),
    ).expand_kwargs(plan())


eval_suite()
