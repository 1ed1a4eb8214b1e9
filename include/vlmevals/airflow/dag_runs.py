"""Creating and failing DAG runs from inside the api-server, with Airflow's own functions.

The evals API runs in the api-server process, which owns Airflow's metadata DB: it creates an `eval_run` DAG run
the way `POST /api/v2/dags/{dag_id}/dagRuns` does (`trigger_dag`) and fails one the way
`PATCH …/dagRuns/{id}` with state failed does. Tasks never call these (Airflow 3 forbids them the metadata DB).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from vlmevals.core.constants import EVAL_RUN_DAG_ID
from vlmevals.core.errors import EvalsError


class AirflowTriggerError(EvalsError):
    """Airflow refused to create the DAG run (DAG not parsed yet, disallowed run type, ...)."""


def create_dag_run(dag_run_id: str, conf: dict[str, Any], user: str | None) -> str:
    """Create an `eval_run` DAG run through Airflow's own trigger function (api-server process only)."""
    from airflow.api.common.trigger_dag import trigger_dag
    from airflow.exceptions import DagNotFound, DagRunAlreadyExists
    from airflow.utils.types import DagRunTriggeredByType

    try:
        dr = trigger_dag(
            EVAL_RUN_DAG_ID,
            triggered_by=DagRunTriggeredByType.REST_API,
            triggering_user_name=user,
            run_id=dag_run_id,
            conf=conf,
            logical_date=None,
        )
    except DagNotFound as err:
        raise AirflowTriggerError(
            f"the {EVAL_RUN_DAG_ID!r} DAG is not known to Airflow yet ({err}); wait for the dag-processor to parse "
            "dags/ and retry"
        ) from err
    except (DagRunAlreadyExists, ValueError) as err:
        raise AirflowTriggerError(f"Airflow refused the DAG run: {err}") from err
    return dr.run_id if dr is not None else dag_run_id


def fail_dag_run(dag_id: str, dag_run_id: str) -> bool:
    """Fail an Airflow DAG run (its running tasks are killed); False if it is gone or already over.

    Airflow's own "mark failed" leaves a DAG run with a pending teardown running so the teardown can clean up;
    our teardown (`finalize`) only guarantees a terminal row, and the row is already `cancelled`, so the DAG run
    is ended at once and the teardown skipped (otherwise a cancelled run would end as "success").
    """
    from airflow.api.common.mark_tasks import set_dag_run_state_to_failed
    from airflow.models import DagRun, TaskInstance
    from airflow.models.dagbag import DBDagBag
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState, State, TaskInstanceState

    with create_session() as session:
        dr = session.scalar(select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == dag_run_id))
        if dr is None or dr.state in (DagRunState.SUCCESS, DagRunState.FAILED):
            return False
        dag = DBDagBag().get_dag_for_run(dr, session=session)
        if dag is None:
            return False
        set_dag_run_state_to_failed(dag=dag, run_id=dag_run_id, commit=True, session=session)
        session.refresh(dr)
        if dr.state != DagRunState.FAILED:
            for ti in session.scalars(
                select(TaskInstance).where(TaskInstance.dag_id == dag_id, TaskInstance.run_id == dag_run_id)
            ):
                if ti.state is None or ti.state not in State.finished:
                    ti.set_state(TaskInstanceState.SKIPPED, session=session)
            dr.set_state(DagRunState.FAILED)
            session.merge(dr)
        return True
