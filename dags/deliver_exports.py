"""
### Deliver eval results to the experiment trackers

Sends the export outbox's due rows (one per finished eval run and exporter in `EVALS_EXPORTERS`) to MLflow and
TensorBoard. A tracker that is down leaves its rows pending with the error and a later attempt time (backoff
doubling up to an hour); eval runs never wait for it. `GET /api/evals/exports` shows the outbox,
`vlmevals exports retry` re-queues rows whose attempts are spent. Scheduled only where `EVALS_EXPORTERS` names an
exporter (read when the file is parsed): without one there is nothing to send, and a task start a minute is not
free on a small machine.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import dag, task
from vlmevals.core.constants import DELIVER_EXPORTS_DAG_ID
from vlmevals.core.settings import get_settings


@dag(
    dag_id=DELIVER_EXPORTS_DAG_ID,
    schedule=dt.timedelta(minutes=1) if get_settings().exporter_names else None,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    doc_md=__doc__,
    tags=["evals"],
    max_active_runs=1,
    dagrun_timeout=dt.timedelta(minutes=10),
)
def deliver_exports() -> None:
    @task(retries=0)
    def deliver() -> dict[str, int]:
        from vlmevals.airflow.hooks import engine_for_tasks
        from vlmevals.exports.delivery import deliver_pending

        return deliver_pending(engine_for_tasks()).as_dict()

    deliver()


deliver_exports()
