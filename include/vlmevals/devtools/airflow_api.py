"""Small helpers over Airflow's REST API that the CLI, the tests and the benchmarks share."""

from __future__ import annotations

import time

import httpx

from vlmevals.core.constants import EVAL_RUN_DAG_ID


def wait_for_dag(client: httpx.Client, dag_id: str = EVAL_RUN_DAG_ID, timeout_s: float = 180) -> None:
    """Wait until the dag-processor has parsed `dag_id`, and unpause it (CLI, tests and benchmarks share this)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        r = client.get(f"/api/v2/dags/{dag_id}")
        if r.status_code == 200:
            if r.json().get("is_paused"):
                client.patch(f"/api/v2/dags/{dag_id}", json={"is_paused": False})
            return
        time.sleep(1)
    raise TimeoutError(f"DAG {dag_id} not parsed after {timeout_s:.0f} s; see the dag-processor log")
