"""Shared by the plugin's e2e tests: API clients for the running stack and waits."""

from __future__ import annotations

import time

import httpx
from vlmevals.devtools.stack import wait_for_dag


def client(stack, user: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {stack.token(user)}"} if user else {}
    return httpx.Client(base_url=stack.api_url, timeout=60, headers=headers)


def wait_dag(c: httpx.Client) -> None:
    """eval_run parsed by the dag-processor and unpaused."""
    wait_for_dag(c, "eval_run", timeout_s=120)


def wait_run(c: httpx.Client, run_id: int, timeout_s: float = 300) -> dict:
    deadline = time.monotonic() + timeout_s
    run: dict = {}
    while time.monotonic() < deadline:
        run = c.get(f"/api/evals/runs/{run_id}").json()
        if run["status"] not in ("queued", "running"):
            return run
        time.sleep(1)
    raise AssertionError(f"run {run_id} still {run.get('status')} after {timeout_s} s")


def wait_dag_run_over(c: httpx.Client, dag_run_id: str, timeout_s: float = 120) -> str:
    deadline = time.monotonic() + timeout_s
    state = "?"
    while time.monotonic() < deadline:
        state = c.get(f"/api/v2/dags/eval_run/dagRuns/{dag_run_id}").json()["state"]
        if state in ("success", "failed"):
            return state
        time.sleep(1)
    raise AssertionError(f"DAG run {dag_run_id} still {state}")
