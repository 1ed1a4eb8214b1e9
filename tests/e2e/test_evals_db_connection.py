"""A whole eval_run (dag.test, real VLMEvalKit) whose tasks find our database only through the `evals_db`
Connection kept in Airflow's metadata DB, or only in a secrets backend: no AIRFLOW_CONN_EVALS_DB, and a
DATABASE_URL that leads nowhere."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select
from vlmevals.db.engine import session_scope
from vlmevals.db.models import EvalRun

from tests.vlmevals.airflow.evals_db_sources import SOURCES, connection_only_in, run_python

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]

RUN_EVAL = f"""
import json
from airflow.dag_processing.dagbag import DagBag
dag = DagBag(dag_folder={str(ROOT / "dags" / "eval_run.py")!r}).dags["eval_run"]
dr = dag.test(run_conf={{"task": "demo-shapes-mcq", "model": "demo-tiny-idefics3", "triggered_by": "airflow_rest"}})
print("DAG_RUN " + json.dumps({{"run_id": dr.run_id, "state": str(dr.state)}}))
"""


@pytest.mark.parametrize("source", SOURCES)
def test_a_run_completes_with_the_connection_only_in(
    source: str, eval_run_paused: None, seeded, demo_assets, tmp_path: Path
) -> None:
    with connection_only_in(source, tmp_path) as env:
        out = run_python(RUN_EVAL, env)
    dag_run = json.loads(out.split("DAG_RUN ", 1)[1].splitlines()[0])
    with session_scope(seeded) as s:
        run = s.scalar(select(EvalRun).where(EvalRun.dag_run_id == dag_run["run_id"]))
        assert run is not None, f"queue recorded no eval run ({source})"
        assert (run.status, run.error) == ("completed", None)
        assert [e.status for e in run.events] == ["queued", "running", "completed"]
        assert run.primary_metric is not None
    assert dag_run["state"] == "success"
