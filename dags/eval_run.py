"""
### Evaluate one model on one task with VLMEvalKit

`queue` validates the request and records the eval run (or adopts the one the evals API created, when the conf
carries `eval_run_id`); it fails before any GPU slot is taken on an unknown task or model or a missing dataset, and
it is the branch: it picks the inference task matching the model's GPUs (one task per slot count of the pool `gpu`;
the others are skipped). A served model (one with a `serve` spec) takes the other way: the run joins its (model,
checkpoint)'s live server or requests one, `start_server` triggers that server's `model_server` DAG run (skipped
when another run did), `wait_for_server` waits in reschedule mode (no slot held while waiting), and
`inference_served` sends the run's requests to the engine concurrently, holding no GPU slot of its own. `inference`
runs VLMEvalKit as a subprocess holding those slots (and scores in the same process when the judge is offline exact
matching); retries resume from VLMEvalKit's partial results; when that process scored, `inference` also stores the
result (the leaderboard need not wait for two more task starts). `scoring` runs VLMEvalKit's evaluation (or checks
the metric file the inference process wrote), `ingest_metrics` stores every metric and marks the run completed
(unless `inference` did) and checks nightly and checkpoint runs for regressions. `finalize` (a teardown) guarantees
that no run stays queued or running and writes the DAG run's note: "eval run N: task x model → score" (or the
failure) with a link to the leaderboard page. It fails when the eval run failed (`on_failure_fail_dagrun`): Airflow
leaves teardowns out of a DAG run's state, so after "Mark failed" the skipped leaves alone would end the DAG run as
success. "Mark success" on an unfinished run cancels it (no metrics); either way the run's error names who did it,
from Airflow's audit log. At most one queued or running evaluation per task x model unless `force`: a duplicate
fails at `queue` naming the active run.

Trigger from the form, from `POST /api/v2/dags/eval_run/dagRuns` with `{"conf": {"task": ..., "model": ...}}`, or
from `POST /api/evals/tasks/{task}/runs`.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, cast

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import Param, dag, get_current_context, task
from vlmevals.catalogue.choices import read_choices
from vlmevals.core.constants import EVAL_RUN_DAG_ID, MODEL_SERVER_DAG_ID
from vlmevals.gpu.slots import GPU_POOL, GPU_QUEUE, GPU_SLOT_BUCKETS, inference_task_id

if TYPE_CHECKING:
    from airflow.sdk.bases.decorator import Task
    from airflow.sdk.definitions.xcom_arg import PlainXComArg
    from sqlalchemy import Engine

_CHOICES = read_choices()  # a small JSON file the catalogue writes: no database query at parse time
RUN_INFO_KEY = "run"  # queue's XCom with the run (its return value is the branch it picked)


def _engine() -> Engine:
    from vlmevals.airflow.hooks import engine_for_tasks

    return engine_for_tasks()


def _run_id_from(context: dict[str, Any]) -> int | None:
    info = context["ti"].xcom_pull(task_ids="queue", key=RUN_INFO_KEY)
    if isinstance(info, dict) and info.get("eval_run_id"):
        return int(info["eval_run_id"])
    conf = context["dag_run"].conf or {}
    return int(conf["eval_run_id"]) if conf.get("eval_run_id") else None


def _on_failure(context: dict[str, Any]) -> None:
    """A task failed for good: the run row gets the readable reason (a failed `queue` without one: the note)."""
    from vlmevals.pipeline.steps import record_task_failure

    run_id, task_id = _run_id_from(context), context["ti"].task_id
    record_task_failure(_engine(), run_id, task_id, context.get("exception"))
    if run_id is None and task_id == "queue":
        from vlmevals.pipeline.notes import note_queue_failure

        dag_run = context["dag_run"]
        conf = {**dict(context.get("params") or {}), **(dag_run.conf or {})}
        note_queue_failure(_engine(), dag_run.dag_id, dag_run.run_id, conf, context.get("exception"))


def _on_ingested(context: dict[str, Any]) -> None:
    """A nightly run flagged as a regression fires the notifier named by EVALS_REGRESSION_NOTIFIER."""
    from vlmevals.db.engine import session_scope
    from vlmevals.results.regression import notify

    with session_scope(_engine()) as s:
        notify(s, _run_id_from(context), context)


def _as_airflow_error(err: Exception) -> Exception:
    """Our request errors and failures VLMEvalKit recorded itself are final: don't burn retries on them."""
    from airflow.sdk.exceptions import AirflowFailException
    from vlmevals.core.errors import EvalsError, VLMEvalFailure

    if isinstance(err, VLMEvalFailure) and err.retryable:
        return err
    if isinstance(err, EvalsError):
        return AirflowFailException(str(err))
    return err


def _inference_task(slots: int) -> Task[[dict[str, Any]], dict[str, Any]]:
    @task(
        task_id=inference_task_id(slots),
        pool=GPU_POOL,
        pool_slots=slots,
        queue=GPU_QUEUE,
        retries=2,
        retry_delay=dt.timedelta(seconds=5),
        execution_timeout=dt.timedelta(hours=24),
        on_failure_callback=_on_failure,
    )
    def _inference(info: dict[str, Any]) -> dict[str, Any]:
        from vlmevals.pipeline.steps import inference_step

        try:
            return inference_step(_engine(), info["eval_run_id"], get_current_context()["ti"].try_number)
        except Exception as err:
            raise _as_airflow_error(err) from err

    return _inference


# a served model (its `serve` spec): the server's DAG run, once per server (a second trigger is skipped)
SERVER_INFO = "ti.xcom_pull(task_ids='queue', key='" + RUN_INFO_KEY + "')"


def _start_server() -> TriggerDagRunOperator:
    return TriggerDagRunOperator(
        task_id="start_server",
        trigger_dag_id=MODEL_SERVER_DAG_ID,
        trigger_run_id="{{ " + SERVER_INFO + "['server_dag_run_id'] }}",
        conf={"server_id": "{{ " + SERVER_INFO + "['server_id'] }}"},
        logical_date=None,
        wait_for_completion=False,
        skip_when_already_exists=True,
        retries=2,
        retry_delay=dt.timedelta(seconds=5),
        on_failure_callback=_on_failure,
    )


@task.sensor(
    poke_interval=15,
    # LocalExecutor may report a poke's end after the scheduler re-queued the next poke (same try number) and
    # the scheduler then fails the task: a retry just waits on; only a failed server ends the wait for good
    retries=3,
    retry_delay=dt.timedelta(seconds=5),
    timeout=dt.timedelta(hours=24).total_seconds(),
    mode="reschedule",  # no worker slot between pokes, no GPU slot: the server holds the GPUs
    trigger_rule="none_failed",  # start_server is skipped when another run started the server
    on_failure_callback=_on_failure,
)
def wait_for_server(info: dict[str, Any]) -> bool:
    from vlmevals.pipeline.serve import server_ready

    try:
        return server_ready(_engine(), info["eval_run_id"])
    except Exception as err:
        raise _as_airflow_error(err) from err


@task(
    retries=2,
    retry_delay=dt.timedelta(seconds=5),
    execution_timeout=dt.timedelta(hours=24),
    on_failure_callback=_on_failure,
)
def inference_served(info: dict[str, Any]) -> dict[str, Any]:
    from vlmevals.pipeline.steps import served_inference_step

    try:
        return served_inference_step(_engine(), info["eval_run_id"], get_current_context()["ti"].try_number)
    except Exception as err:
        raise _as_airflow_error(err) from err


@dag(
    dag_id=EVAL_RUN_DAG_ID,
    schedule=None,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    doc_md=__doc__,
    tags=["evals"],
    max_active_runs=64,
    params={
        "task": Param(
            "demo-shapes-mcq",
            type="string",
            title="Task",
            description="Catalogue name of the benchmark: pick one of the list or type any (see /api/evals/tasks)",
            minLength=1,
            examples=_CHOICES["tasks"],
        ),
        "model": Param(
            "demo-tiny-idefics3",
            type="string",
            title="Model",
            description="Catalogue name of the model: pick one of the list or type any (see /api/evals/models)",
            minLength=1,
            examples=_CHOICES["models"],
        ),
        "judge": Param(
            None,
            type=["null", "string"],
            title="Judge",
            description="VLMEvalKit --judge (empty: EVALS_JUDGE, default exact_matching, offline)",
        ),
        "reuse": Param(
            True, type="boolean", title="Resume", description="Resume from partial results when a task is retried"
        ),
        "limit": Param(
            None,
            type=["null", "integer"],
            minimum=1,
            title="Limit",
            description="Evaluate only the first N samples (empty: all)",
        ),
        "force": Param(
            False,
            type="boolean",
            title="Force",
            description="Start even if this task x model already has a queued or running evaluation",
        ),
        "source_run_id": Param(
            None,
            type=["null", "integer"],
            minimum=1,
            title="Re-judge run",
            description=(
                "Re-judge this completed run's predictions with the judge above (no inference, no GPU); "
                "task and model are that run's. Force: judge again with the same judge"
            ),
        ),
        "eval_run_id": Param(
            None,
            type=["null", "integer"],
            title="Eval run id",
            description="Set by the evals API; leave empty when triggering by hand",
        ),
    },
)
def eval_run() -> None:
    @task.branch(retries=1, retry_delay=dt.timedelta(seconds=5), on_failure_callback=_on_failure)
    def queue() -> list[str]:
        """Also the branch (no separate routing task: each task start costs a scheduler loop and a fork)."""
        from vlmevals.pipeline.steps import queue_step

        context = get_current_context()
        dag_run, ti = context["dag_run"], context["ti"]
        conf = {**dict(context.get("params") or {}), **(dag_run.conf or {})}
        try:
            info = queue_step(
                _engine(),
                conf,
                dag_id=dag_run.dag_id,
                dag_run_id=dag_run.run_id,
                run_type=str(dag_run.run_type),
                user=dag_run.triggering_user_name,
            )
        except Exception as err:
            raise _as_airflow_error(err) from err
        ti.xcom_push(key=RUN_INFO_KEY, value=info)
        return list(info["branch"])

    @task(
        trigger_rule="none_failed_min_one_success",
        retries=1,
        retry_delay=dt.timedelta(seconds=5),
        on_failure_callback=_on_failure,
    )
    def scoring(info: dict[str, Any]) -> None:
        from vlmevals.pipeline.steps import scoring_step

        try:
            scoring_step(_engine(), info["eval_run_id"], get_current_context()["ti"].try_number)
        except Exception as err:
            raise _as_airflow_error(err) from err

    @task(
        retries=5,
        retry_delay=dt.timedelta(seconds=3),
        retry_exponential_backoff=2.0,
        on_failure_callback=_on_failure,
        on_success_callback=_on_ingested,
    )
    def ingest_metrics(info: dict[str, Any]) -> dict[str, Any]:
        from vlmevals.pipeline.steps import ingest_step

        try:
            return ingest_step(_engine(), info["eval_run_id"])
        except Exception as err:
            raise _as_airflow_error(err) from err

    @task(retries=3, retry_delay=dt.timedelta(seconds=3))
    def finalize(info: dict[str, Any] | None) -> str:
        from airflow.sdk.exceptions import AirflowFailException
        from vlmevals.core.vocabulary import RunStatus
        from vlmevals.pipeline.notes import note_finished_run
        from vlmevals.pipeline.operator_actions import last_state_change
        from vlmevals.pipeline.steps import finalize_step

        dag_run = get_current_context()["dag_run"]
        run_id = info.get("eval_run_id") if isinstance(info, dict) else None
        status = finalize_step(
            _engine(), run_id, dag_run.run_id, lambda: last_state_change(dag_run.dag_id, dag_run.run_id)
        )
        note_finished_run(_engine(), run_id, dag_run.dag_id, dag_run.run_id)  # "eval run N: task x model → score"
        if status == RunStatus.FAILED:  # a teardown's success would let the DAG run end as success (see the docstring)
            raise AirflowFailException(f"eval run {run_id} failed")
        return status

    # a task receives the XCom's value; Airflow's types know only the XComArg that the wiring holds
    queued = queue()
    info: Any = cast("PlainXComArg", queued)[RUN_INFO_KEY]
    waited = wait_for_server(info)
    queued >> _start_server() >> waited
    served = inference_served(info)
    waited >> served
    branches = [*(_inference_task(s)(info) for s in GPU_SLOT_BUCKETS), served]
    scored = scoring(info)
    branches >> scored
    ingested = ingest_metrics(info)
    scored >> ingested
    ingested >> finalize(info).as_teardown(on_failure_fail_dagrun=True)


eval_run()
