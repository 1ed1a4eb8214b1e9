"""
### Backfill: record results already in a VLMEvalKit work dir

Scans `folder` (default: `VLMEVAL_OUTPUTS`) for finished VLMEvalKit results in all three layouts (upstream
`{model}/T{YYYYMMDD-HHMMSS}/`, older `{model}/T{YYYYMMDD}_G{commit}/`, flat files in `{model}/`) and records
each as a completed eval run with its metrics, or a failed one with VLMEvalKit's error. Matching is by
`models.vlmeval_model` and `tasks.vlmeval_data`; results of unknown models or tasks are listed in the summary
(or registered, with `create_unknown`). Safe to repeat: a result already recorded and unchanged is skipped
without opening its files. The return value (XCom) is the summary with every unknown or malformed result and
the reason.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.sdk import Param, dag, get_current_context, task
from vlmevals.core.constants import SYNC_OUTPUTS_DAG_ID


@dag(
    dag_id=SYNC_OUTPUTS_DAG_ID,
    schedule=None,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    doc_md=__doc__,
    tags=["evals"],
    max_active_runs=1,
    params={
        "folder": Param(
            None,
            type=["null", "string"],
            title="Folder",
            description="VLMEvalKit work dir to scan (empty: VLMEVAL_OUTPUTS of the workers)",
        ),
        "create_unknown": Param(
            False,
            type="boolean",
            title="Create unknown models and tasks",
            description="Register models/tasks found in the folder but missing from the "
            "catalogue (else they are only reported)",
        ),
    },
)
def sync_outputs() -> None:
    @task(retries=1, retry_delay=dt.timedelta(seconds=10))
    def sync() -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowFailException
        from vlmevals.airflow.hooks import engine_for_tasks
        from vlmevals.backfill import sync_outputs as do_sync
        from vlmevals.core.errors import EvalsError
        from vlmevals.core.settings import get_settings

        params = get_current_context().get("params", {})
        folder = params.get("folder") or str(get_settings().outputs_dir)
        try:
            report = do_sync(folder, engine=engine_for_tasks(), create_unknown=bool(params.get("create_unknown")))
        except EvalsError as err:
            raise AirflowFailException(str(err)) from err
        return report.as_dict()

    sync()


sync_outputs()
