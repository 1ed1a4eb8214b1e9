"""
### Nightly re-evaluation of enrolled (task, model) pairs

Runs on the cron in `EVALS_NIGHTLY_SCHEDULE` (default `0 2 * * *`, UTC; `off` disables the schedule), and
by hand. `plan` resolves the enrolments (a pair, a whole task or a whole model; see `vlmevals enrolments`),
skips every pair whose last completed run has the same fingerprint as now (toolkit version, model and weights,
dataset md5, judge) unless `force` is set, and records one eval run per remaining pair
(`triggered_by=nightly`). `trigger_eval_run` starts one `eval_run` DAG run per pair; their inference tasks
share the `gpu` pool, which bounds how many evaluate at once. `summary` returns (and logs) how many were
triggered and skipped, and why. A nightly run that scores worse than the pair's previous completed run by
more than the task's tolerance is flagged as a regression (see the run's `regression_detail`).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import Param, dag, get_current_context, task
from vlmevals.core.constants import EVAL_RUN_DAG_ID, NIGHTLY_DAG_ID
from vlmevals.nightly.schedule import schedule
from vlmevals.pipeline.callbacks import trigger_failed

if TYPE_CHECKING:
    from sqlalchemy import Engine


def _engine() -> Engine:
    from vlmevals.airflow.hooks import engine_for_tasks

    return engine_for_tasks()


@dag(
    dag_id=NIGHTLY_DAG_ID,
    schedule=schedule(),
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    doc_md=__doc__,
    tags=["evals"],
    max_active_runs=1,
    params={
        "force": Param(
            False,
            type="boolean",
            title="Force",
            description="Re-run every enrolled pair, even those whose fingerprint is unchanged",
        ),
    },
)
def nightly_evals() -> None:
    @task(retries=1, retry_delay=dt.timedelta(seconds=30))
    def plan() -> list[dict[str, Any]]:
        from vlmevals.db.engine import session_scope
        from vlmevals.nightly.planning import plan_and_create

        context = get_current_context()
        dag_run = context["dag_run"]
        with session_scope(_engine()) as s:  # the unit of work: the plan and every run it records
            triggers, summary = plan_and_create(
                s,
                force=bool(context.get("params", {}).get("force")),
                nightly_run_id=dag_run.run_id,
                user=dag_run.triggering_user_name,
            )
        context["ti"].xcom_push(key="summary", value=summary)
        return triggers

    @task(trigger_rule="all_done")
    def summary() -> dict[str, Any]:
        import logging

        got = get_current_context()["ti"].xcom_pull(task_ids="plan", key="summary") or {}
        logging.getLogger("vlmevals.nightly.planning").info("nightly summary: %s", got.get("text", "plan did not run"))
        return got

    triggers = plan()
    started = TriggerDagRunOperator.partial(
        task_id="trigger_eval_run",
        trigger_dag_id=EVAL_RUN_DAG_ID,
        logical_date=None,
        wait_for_completion=False,
        on_failure_callback=trigger_failed("nightly DAG"),
    ).expand_kwargs(triggers)
    started >> summary()


nightly_evals()
