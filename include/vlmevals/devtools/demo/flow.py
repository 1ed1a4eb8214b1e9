"""The learning demo on a running stack: register the trained checkpoints, wait for their suite runs, print.

Everything goes through the evals API as a user would: `POST /models/{name}/checkpoints` starts the `demo`
suite's runs of each checkpoint, `GET /runs/{id}` is polled until they end, then the per-checkpoint scores and
the suite's overall board are printed as tables.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from vlmevals.core.constants import EVAL_RUN_DAG_ID
from vlmevals.core.settings import get_settings
from vlmevals.devtools.airflow_api import wait_for_dag
from vlmevals.devtools.stack import Stack

TRAINED_MODEL = "demo-tiny-idefics3-trained"
SUITE = "demo"
TERMINAL = ("completed", "failed", "cancelled")


def register_checkpoints(api: httpx.Client, model: str, dirs: dict[int, Path]) -> list[int]:
    """Register each checkpoint (a step already registered is left as it is); the eval run ids started."""
    run_ids: list[int] = []
    for step, path in sorted(dirs.items()):
        r = api.post(f"/models/{model}/checkpoints", json={"step": step, "weights_path": str(path)})
        if r.status_code == 409:  # registered by an earlier demo: its runs are on the board already
            continue
        r.raise_for_status()
        body = r.json()
        run_ids += [s["run_id"] for s in body["started"]]
        run_ids += [a["run_id"] for a in body["already_active"] if a.get("run_id") is not None]
    return run_ids


def wait_runs(api: httpx.Client, run_ids: list[int], console: Console, timeout_s: float = 1800) -> dict[int, str]:
    """Poll the runs until each has ended; their final statuses."""
    deadline = time.monotonic() + timeout_s
    status: dict[int, str] = {}
    with console.status("evaluating the checkpoints") as shown:
        while time.monotonic() < deadline:
            status = {i: api.get(f"/runs/{i}").json().get("status", "?") for i in run_ids}
            done = sum(s in TERMINAL for s in status.values())
            shown.update(f"evaluating the checkpoints: {done}/{len(run_ids)} runs finished")
            if done == len(run_ids):
                break
            time.sleep(2)
    return status


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def checkpoint_table(scores: dict[str, Any]) -> Table:
    """One row per checkpoint: its step, each task's score (0-100) and the suite average."""
    tasks = [t["name"] for t in scores["tasks"]]
    table = Table(title=f"{scores['model']} checkpoints on suite {scores['suite']} (0-100)")
    for col in ("step", *tasks, "average"):
        table.add_column(col, justify="right")
    for row in scores["checkpoints"]:
        cells = [_cell((row["scores"].get(t) or {}).get("score")) for t in tasks]
        table.add_row(str(row["step"] if row["step"] is not None else row["label"]), *cells, _cell(row["average"]))
    return table


def overall_table(board: dict[str, Any]) -> Table:
    """The suite's overall board: one row per model (its best run per task), ranked, then the partial ones."""
    tasks = [t["task"] for t in board["suite"]["tasks"]]
    table = Table(title=f"overall board: suite {board['suite']['name']} (best per cell, 0-100)")
    for col in ("rank", "model", *tasks, "average", "coverage"):
        table.add_column(col, justify="left" if col == "model" else "right")
    for row in board["data"] + board["partial"]:
        cells = [_cell((row["cells"].get(t) or {}).get("value")) for t in tasks]
        rank = "-" if row["rank"] is None else str(row["rank"])
        table.add_row(rank, row["model_name"], *cells, _cell(row["average"]), row["coverage"])
    return table


def run_learning_demo(api: httpx.Client, dirs: dict[int, Path], console: Console) -> bool:
    """Register, wait, print; False when a run did not complete."""
    run_ids = register_checkpoints(api, TRAINED_MODEL, dirs)
    console.print(f"registered checkpoints {sorted(dirs)} of {TRAINED_MODEL}: {len(run_ids)} eval runs started")
    status = wait_runs(api, run_ids, console)
    scores = api.get(f"/models/{TRAINED_MODEL}/checkpoints/scores", params={"suite": SUITE})
    scores.raise_for_status()
    console.print(checkpoint_table(scores.json()))
    board = api.get(f"/suites/{SUITE}/leaderboard", params={"pick": "best"})
    board.raise_for_status()
    console.print(overall_table(board.json()))
    failed = {i: s for i, s in status.items() if s != "completed"}
    if failed:
        console.print(f"[red]runs not completed:[/] {failed}")
    return not failed


def train_and_evaluate(stack: Stack, console: Console) -> bool:
    """`vlmevals demo` after bring-up: train (cached), then register, wait and print through the API."""
    from vlmevals.devtools.demo.train import CKPT_DIR_NAME, train_checkpoints

    t0, cpu0 = time.monotonic(), time.process_time()
    with console.status("training the demo model on CPU (cached once done)"):
        dirs = train_checkpoints(get_settings().models_dir / CKPT_DIR_NAME)
    took, cpu = time.monotonic() - t0, time.process_time() - cpu0
    console.print(f"[green]✓[/] checkpoints {sorted(dirs)} in {took:.0f} s ({cpu:.0f} CPU s)")
    headers = {"Authorization": f"Bearer {stack.token()}"}
    wait_for_dag(httpx.Client(base_url=stack.api_url, headers=headers, timeout=30), EVAL_RUN_DAG_ID)
    with httpx.Client(base_url=f"{stack.api_url}/api/evals", headers=headers, timeout=60) as api:
        return run_learning_demo(api, dirs, console)
