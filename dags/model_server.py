"""
### A model server: one inference engine serving a model (at one checkpoint) to every eval run that needs it

Started by the eval runs of a served model (one with a `serve` spec), never by hand: the first run that needs the
(model, checkpoint) records a server and triggers this DAG run (`server-{id}__{time}`); later runs join the live server.
`plan` picks the `serve` task holding the server's GPUs (one task per slot count of the pool `gpu`); that task
leases the devices, starts the engine in its own process group, marks the server ready, beats a heartbeat,
restarts a dead engine once, and stops it when no queued or running eval run has needed it for the model's
`serve.idle_timeout_s` (at once for a suite's or checkpoint's server), when stopped through
`POST /api/evals/servers/{id}/stop`, or when the task is marked failed or success. `finalize` (a teardown) leaves
no server row live and no GPU leased, and notes what the server served. See README "Serving models for evaluation".
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from airflow.sdk import Param, dag, get_current_context, task
from vlmevals.core.constants import MODEL_SERVER_DAG_ID
from vlmevals.gpu.slots import GPU_POOL, GPU_QUEUE, GPU_SLOT_BUCKETS, serve_task_id

if TYPE_CHECKING:
    from airflow.sdk.bases.decorator import Task
    from sqlalchemy import Engine


def _engine() -> Engine:
    from vlmevals.airflow.hooks import engine_for_tasks

    return engine_for_tasks()


def _server_id() -> int:
    from vlmevals.pipeline.serve import server_id_from

    context = get_current_context()
    return server_id_from({**dict(context.get("params") or {}), **(context["dag_run"].conf or {})})


def _serve_task(slots: int) -> Task[[], str]:
    @task(
        task_id=serve_task_id(slots),
        pool=GPU_POOL,
        pool_slots=slots,
        queue=GPU_QUEUE,
        retries=0,  # the engine is restarted once in the task; a lost task fails the server (runs say why)
        execution_timeout=dt.timedelta(days=7),
    )
    def _serve() -> str:
        from airflow.sdk.exceptions import AirflowFailException
        from vlmevals.core.settings import get_settings
        from vlmevals.pipeline.serve import serve_step
        from vlmevals.serving.supervisor import ServerFailed

        try:
            return serve_step(_engine(), _server_id(), get_current_context()["dag_run"].run_id, get_settings())
        except ServerFailed as err:
            raise AirflowFailException(str(err)) from err

    return _serve


@dag(
    dag_id=MODEL_SERVER_DAG_ID,
    schedule=None,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    doc_md=__doc__,
    tags=["evals"],
    max_active_runs=64,
    params={
        "server_id": Param(
            None,
            type=["null", "integer", "string"],
            title="Server id",
            description="Set by the eval run that requested the server; this DAG is not triggered by hand",
        )
    },
)
def model_server() -> None:
    @task.branch(retries=1, retry_delay=dt.timedelta(seconds=5))
    def plan() -> str:
        from vlmevals.pipeline.serve import serve_slots

        return serve_task_id(serve_slots(_engine(), _server_id()))

    @task(retries=3, retry_delay=dt.timedelta(seconds=3))
    def finalize() -> dict[str, Any]:
        from vlmevals.pipeline.notes import server_note, try_write_note
        from vlmevals.pipeline.serve import finalize_server

        dag_run = get_current_context()["dag_run"]
        summary = finalize_server(_engine(), _server_id(), None)
        try_write_note(dag_run.dag_id, dag_run.run_id, server_note(summary))
        return summary

    planned = plan()
    serving = [_serve_task(s)() for s in GPU_SLOT_BUCKETS]
    planned >> serving
    serving >> finalize().as_teardown()


model_server()
