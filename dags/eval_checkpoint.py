"""
### Evaluate model checkpoints (asset-scheduled)

Runs for every event of the asset `model_checkpoints` (uri `vlmevals://checkpoints`): a training DAG that
declares it as an outlet, or any client through Airflow's `POST /api/v2/assets/events`. Each event's `extra`
is one checkpoint: `{"model": name, "step": int | "label": str, "weights_path": path | "hub_revision": rev,
"suite": name (optional, default the model's suite)}`.

`register` validates every event of the DAG run and fails naming the bad field and the fix (registering
nothing); otherwise it registers each checkpoint with a queued eval run per task of its suite, and
`trigger_eval_run` starts one `eval_run` DAG run per row. Scores against step:
`GET /api/evals/models/{model}/checkpoints` and the runs' `checkpoint`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import Asset, dag, get_current_context, task
from vlmevals.core.constants import CHECKPOINT_ASSET_NAME, CHECKPOINT_ASSET_URI, CHECKPOINT_DAG_ID, EVAL_RUN_DAG_ID
from vlmevals.pipeline.callbacks import trigger_failed

CHECKPOINTS = Asset(name=CHECKPOINT_ASSET_NAME, uri=CHECKPOINT_ASSET_URI)


@dag(
    dag_id=CHECKPOINT_DAG_ID,
    schedule=[CHECKPOINTS],
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    doc_md=__doc__,
    tags=["evals"],
)
def eval_checkpoint() -> None:
    @task(retries=0)
    def register() -> list[dict[str, Any]]:
        from vlmevals.pipeline.checkpoint_events import register_asset_events

        context = get_current_context()
        return register_asset_events(context.get("triggering_asset_events"), context["dag_run"])

    TriggerDagRunOperator.partial(
        task_id="trigger_eval_run",
        trigger_dag_id=EVAL_RUN_DAG_ID,
        logical_date=None,
        wait_for_completion=False,
        on_failure_callback=trigger_failed("eval_checkpoint DAG"),
    ).expand_kwargs(register())


eval_checkpoint()
