"""Who changed an eval_run DAG run's or task's state by hand in Airflow ("Mark failed" / "Mark success").

Airflow 3 keeps no acting user on the DAG run or task instance for a state change (`triggering_user_name` is
who *started* the run); the REST endpoints behind the UI buttons (`PATCH …/dagRuns/{id}` with `state`,
`PATCH …/taskInstances/{task}` with `new_state`) write an audit-log row (`action_logging`: event
`patch_dag_run` / `patch_task_instance`, owner = the user, extra = the request body). Tasks must not read the
metadata DB, so `finalize` reads that row through the public `GET /api/v2/eventLogs` (`vlmevals.airflow.rest`),
signed in as the notes login (`evals_airflow_api`). Without it the message says "in Airflow" and the time
`finalize` saw it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import httpx

from vlmevals.airflow.rest import AirflowRest, ApiLogin, api_login

log = logging.getLogger(__name__)
STATE_EVENTS = ("patch_dag_run", "patch_task_instance")


@dataclass(frozen=True)
class StateChange:
    """One hand-made state change: `state` is "failed" or "success"."""

    state: str
    user: str | None
    when: str
    task_id: str | None

    def describe(self) -> str:
        what = f"its {self.task_id} task" if self.task_id else "the DAG run"
        who = f" by {self.user}" if self.user else ""
        return f"{what} was marked {self.state} in Airflow{who} at {self.when}"


def _requested_state(extra: str | None) -> str | None:
    try:
        body = json.loads(extra or "{}")
    except ValueError:
        return None
    state = body.get("state") or body.get("new_state") if isinstance(body, dict) else None
    return str(state) if state in ("failed", "success") else None


def last_state_change(dag_id: str, dag_run_id: str, login: ApiLogin | None = None) -> StateChange | None:
    """The latest "Mark failed/success" of this DAG run or one of its tasks, from Airflow's audit log."""
    login = login or api_login()
    if login is None:
        return None
    rows = None
    for attempt in range(3):  # a loaded api-server may time out: the user's name is worth a retry
        try:
            rows = _event_rows(login, dag_id, dag_run_id)
            break
        except httpx.HTTPError as err:
            log.warning("cannot read Airflow's audit log for %s (try %d: %s)", dag_run_id, attempt + 1, err)
    for row in rows or []:
        state = _requested_state(row.get("extra"))
        if row.get("event") in STATE_EVENTS and state:
            return StateChange(state, row.get("owner"), str(row.get("when")), row.get("task_id"))
    return None


def _event_rows(login: ApiLogin, dag_id: str, dag_run_id: str) -> list[dict[str, Any]]:
    with AirflowRest(login, timeout=60) as api:
        return api.event_logs(dag_id, dag_run_id)
