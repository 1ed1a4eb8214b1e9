"""The Airflow DAG run note of an eval run: "eval run N: task x model → score" (or the failure), with a link.

Airflow 3 tasks must not touch its metadata DB, and the task SDK's execution API sets a note only when it
triggers a run; the supported way to annotate a running DAG run is the public REST API,
`PATCH /api/v2/dags/{dag_id}/dagRuns/{run_id}?update_mask=note`, through the Airflow adapter's REST client
(`vlmevals.airflow.rest`), signed in as the user of the Airflow connection `evals_airflow_api` (the user needs
the right to edit DAG runs). Without it the note is skipped with a warning naming the connection: a note is a
convenience and never fails a run.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import httpx
from sqlalchemy import Engine, select

from vlmevals.airflow.rest import AirflowRest, ApiLogin, api_login, site_url
from vlmevals.core.constants import API_PREFIX
from vlmevals.core.vocabulary import RunStatus
from vlmevals.db.engine import session_scope
from vlmevals.db.models import EvalRun
from vlmevals.runs.lifecycle import get_run

log = logging.getLogger(__name__)

TIMES = "\N{MULTIPLICATION SIGN}"
NOTE_MAX_CHARS = 1000
"""Airflow stores a note in a String(1000) column."""


def leaderboard_link(site_url: str, task: str, run_id: int) -> str:
    """The leaderboard page of the run's task, with the run named in the query string."""
    return f"{site_url.rstrip('/')}{API_PREFIX}/ui/leaderboard?{urlencode({'task': task, 'run': run_id})}"


def run_note(engine: Engine, run_id: int, site_url: str) -> str:
    """The note text for a finished eval run: its score, or its status and error."""
    with session_scope(engine) as s:
        run = get_run(s, run_id)
        head = f"eval run {run.id}: {run.task.name} {TIMES} {run.model.name} → "
        if run.status == RunStatus.COMPLETED and run.primary_metric is not None:
            outcome = f"{run.primary_metric:.4f} ({run.task.primary_metric_key})"
        else:
            outcome = f"{run.status}" + (f": {run.error}" if run.error else "")
        link = f"\n\n[Leaderboard]({leaderboard_link(site_url, run.task.name, run.id)})"
    return _fit(head + outcome, link)


def unrecorded_note(task: object, model: object, error: object) -> str:
    """The note when the request failed before an eval run was recorded (e.g. an unknown model)."""
    reason = error or "see the queue task log"
    return _fit(f"eval run not recorded: {task or '?'} {TIMES} {model or '?'} → failed: {reason}")


def _fit(text: str, suffix: str = "") -> str:
    room = NOTE_MAX_CHARS - len(suffix)
    return (text if len(text) <= room else text[: room - 1] + "…") + suffix


def write_note(login: ApiLogin, dag_id: str, dag_run_id: str, text: str, client: httpx.Client | None = None) -> None:
    """Set the DAG run's note through Airflow's public REST API (raises httpx errors)."""
    with AirflowRest(login, timeout=30, client=client) as api:
        api.set_dag_run_note(dag_id, dag_run_id, text)


def run_of_dag_run(engine: Engine, dag_run_id: str) -> int | None:
    """The eval run a DAG run recorded, if any (when `queue` failed after recording it, no XCom names it)."""
    with session_scope(engine) as s:
        return s.scalar(select(EvalRun.id).where(EvalRun.dag_run_id == dag_run_id).order_by(EvalRun.id.desc()))


def note_finished_run(engine: Engine, run_id: int | None, dag_id: str, dag_run_id: str) -> bool:
    """Called by eval_run's `finalize`, when the run's outcome is final; False when there is nothing to note."""
    run_id = run_id or run_of_dag_run(engine, dag_run_id)
    if run_id is None:
        return False  # queue failed before recording a run: `note_queue_failure` wrote the note
    login = api_login()
    return login is not None and try_write_note(dag_id, dag_run_id, run_note(engine, run_id, site_url(login)), login)


def note_queue_failure(engine: Engine, dag_id: str, dag_run_id: str, conf: Mapping[str, Any], error: object) -> bool:
    """`queue` failed for good: without a recorded run, the note carries the error (else `finalize` notes it)."""
    if conf.get("eval_run_id") or run_of_dag_run(engine, dag_run_id) is not None:
        return False
    return try_write_note(dag_id, dag_run_id, unrecorded_note(conf.get("task"), conf.get("model"), error))


def try_write_note(dag_id: str, dag_run_id: str, text: str, login: ApiLogin | None = None) -> bool:
    """`write_note` that logs instead of raising: the run's outcome is already recorded, a note must not change it."""
    login = login or api_login()
    if login is None:
        return False
    try:
        write_note(login, dag_id, dag_run_id, text)
    except (httpx.HTTPError, KeyError, ValueError) as err:
        log.warning("could not write the DAG run note of %s/%s: %s", dag_id, dag_run_id, err)
        return False
    log.info("DAG run note: %s", text)
    return True


def server_note(summary: Mapping[str, Any]) -> str:
    """The note of a `model_server` DAG run: what it served, how many loads, and why it stopped."""
    served = summary.get("runs") or []
    listed = ", ".join(f"#{rid} {status}" for rid, status in served[:40]) + (" …" if len(served) > 40 else "")
    head = (
        f"model server {summary['id']}: {summary['engine']} {summary.get('engine_version') or ''} at "
        f"{summary.get('base_url') or '(never ready)'}; {summary.get('loads', 0)} model load(s); "
        f"{len(served)} eval run(s): {listed or 'none'}"
    )
    return _fit(f"{head}\n{summary['state']}: {summary.get('reason') or ''}")
