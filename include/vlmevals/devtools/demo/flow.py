"""The learning demo on a running stack: register the trained checkpoints, wait for their suite runs, print.

Everything goes through the evals API as a user would: `POST /models/{name}/checkpoints` starts the `demo`
suite's runs of each checkpoint, `GET /runs/{id}` is polled until they end, then the per-checkpoint scores and
the suite's overall board are printed as tables.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from vlmevals.core.constants import EVAL_RUN_DAG_ID
from vlmevals.core.settings import get_settings
from vlmevals.core.vocabulary import RunStatus
from vlmevals.devtools.airflow_api import wait_for_dag
from vlmevals.devtools.demo.progress import TERMINAL, RunView, current_task, reporter, run_view
from vlmevals.devtools.stack import Stack

TRAINED_MODEL = "demo-tiny-idefics3-trained"
SERVED_MODEL = "demo-tiny-idefics3-served"  # the same weights in a managed `transformers serve` (seed.yaml)
SERVED_STEP = 400
SUITE = "demo"
LABEL_WIDTH = 8


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


def _airflow_task(airflow: httpx.Client | None, run: dict[str, Any]) -> str | None:
    """The Airflow task the run's DAG run is at (None when unknown: the display then shows the status only)."""
    if airflow is None or not run.get("dag_run_id") or run.get("status") in TERMINAL:
        return None
    try:
        r = airflow.get(f"/api/v2/dags/{run['dag_id']}/dagRuns/{run['dag_run_id']}/taskInstances")
        return current_task(r.json().get("task_instances", [])) if r.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        return None


def poll(api: httpx.Client, run_ids: list[int], airflow: httpx.Client | None = None) -> list[RunView]:
    """Each run as it is now: `GET /runs/{id}`, plus its current Airflow task while it is active."""
    views = []
    for i in run_ids:
        run = api.get(f"/runs/{i}").json()
        views.append(run_view({"id": i, **run}, _airflow_task(airflow, run)))
    return views


def wait_runs(
    api: httpx.Client,
    run_ids: list[int],
    console: Console,
    airflow: httpx.Client | None = None,
    timeout_s: float = 1800,
) -> dict[int, str]:
    """Poll the runs until each has ended, showing their progress (progress.py); their final statuses."""
    deadline = time.monotonic() + timeout_s
    views: list[RunView] = []
    with reporter(console) as report:
        while time.monotonic() < deadline:
            views = poll(api, run_ids, airflow)
            report.update(views)
            if all(v.finished for v in views):
                break
            time.sleep(2)
    return {v.id: v.status for v in views}


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


def _parts(name: str) -> list[str]:
    return [p for p in re.split(r"[-_]", name) if p]


def _shortest_unique(names: list[str], cut: Callable[[list[str], int], list[str]]) -> dict[str, str]:
    """Each name's fewest parts (taken by `cut`) that no other name shares."""
    parts = {n: _parts(n) for n in names}
    out = {}
    for name in names:
        k = 1
        while k < len(parts[name]) and any(cut(parts[o], k) == cut(parts[name], k) for o in names if o != name):
            k += 1
        out[name] = "-".join(cut(parts[name], k))
    return out


def column_labels(tasks: list[str], width: int = LABEL_WIDTH) -> dict[str, str]:
    """Short unique column labels, so narrow terminals never cut names into look-alikes (`demo-shap…` twice):
    the distinguishing head of each name (MMBench_DEV_EN -> MMBench) when all fit in `width`, else the
    distinguishing tail (demo-shapes-mcq -> mcq), else heads cut to `width`, else t1, t2, ...; the table's
    caption maps labels to tasks."""
    for cut in (lambda p, k: p[:k], lambda p, k: p[-k:]):
        labels = _shortest_unique(tasks, cut)
        if all(len(v) <= width for v in labels.values()) and len(set(labels.values())) == len(tasks):
            return labels
    labels = {
        t: v if len(v) <= width else v[: width - 1] + "~"
        for t, v in _shortest_unique(tasks, lambda p, k: p[:k]).items()
    }
    if len(set(labels.values())) == len(tasks):
        return labels
    return {name: f"t{i}" for i, name in enumerate(tasks, start=1)}


def overall_table(board: dict[str, Any]) -> Table:
    """The suite's overall board: one row per model (its best run per task), ranked, then the partial ones.
    Task columns carry short unique labels, explained by the caption, so the board reads at 80 columns."""
    tasks = [t["task"] for t in board["suite"]["tasks"]]
    labels = column_labels(tasks)
    legend = ", ".join(f"{labels[t]} = {t}" for t in tasks if labels[t] != t)
    table = Table(title=f"overall board: suite {board['suite']['name']} (best per cell, 0-100)", caption=legend or None)
    table.add_column("rank", justify="right", no_wrap=True)
    table.add_column("model", overflow="fold")
    for col in (*(labels[t] for t in tasks), "average", "tasks"):
        table.add_column(col, justify="right", no_wrap=True)
    for row in board["data"] + board["partial"]:
        cells = [_cell((row["cells"].get(t) or {}).get("value")) for t in tasks]
        rank = "-" if row["rank"] is None else str(row["rank"])
        table.add_row(rank, row["model_name"], *cells, _cell(row["average"]), row["coverage"])
    return table


def run_learning_demo(
    api: httpx.Client, dirs: dict[int, Path], console: Console, airflow: httpx.Client | None = None
) -> bool:
    """Register, wait, print; False when a run did not complete."""
    run_ids = register_checkpoints(api, TRAINED_MODEL, dirs)
    console.print(f"registered checkpoints {sorted(dirs)} of {TRAINED_MODEL}: {len(run_ids)} eval runs started")
    status = wait_runs(api, run_ids, console, airflow)
    scores = api.get(f"/models/{TRAINED_MODEL}/checkpoints/scores", params={"suite": SUITE})
    scores.raise_for_status()
    console.print(checkpoint_table(scores.json()))
    board = api.get(f"/suites/{SUITE}/leaderboard", params={"pick": "best"})
    board.raise_for_status()
    console.print(overall_table(board.json()))
    served = run_served_demo(api, dirs, console, airflow)
    failed = {i: s for i, s in status.items() if s != RunStatus.COMPLETED}
    if failed:
        console.print(f"[red]runs not completed:[/] {failed}")
    return not failed and served


def _step_row(api: httpx.Client, model: str, step: int) -> tuple[list[str], dict[str, Any] | None]:
    scores = api.get(f"/models/{model}/checkpoints/scores", params={"suite": SUITE})
    scores.raise_for_status()
    body = scores.json()
    return [t["name"] for t in body["tasks"]], next((r for r in body["checkpoints"] if r["step"] == step), None)


def served_table(api: httpx.Client, step: int, servers: list[dict[str, Any]]) -> Table:
    """The same checkpoint in-process and served: each task's score, the runs, and how often weights were loaded."""
    tasks, local = _step_row(api, TRAINED_MODEL, step)
    _, served = _step_row(api, SERVED_MODEL, step)
    labels = column_labels(tasks)
    table = Table(title=f"step {step}: in-process vs served by a managed engine (0-100)")
    for col in ("path", *(labels[t] for t in tasks), "average", "runs", "model loads"):
        table.add_column(col, justify="right")
    for name, row, loads in (
        ("in-process", local, None),
        ("transformers serve", served, sum(s["loads"] for s in servers)),
    ):
        cells = [_cell(((row or {}).get("scores", {}).get(t) or {}).get("score")) for t in tasks]
        runs = sum(1 for t in tasks if ((row or {}).get("scores", {}).get(t) or {}).get("run_id"))
        table.add_row(name, *cells, _cell((row or {}).get("average")), str(runs), str(runs if loads is None else loads))
    return table


def run_served_demo(
    api: httpx.Client, dirs: dict[int, Path], console: Console, airflow: httpx.Client | None = None
) -> bool:
    """The step-400 checkpoint again, as a served model: one managed `transformers serve`, the suite's three runs
    sent to it concurrently, the server stopped after them; then both paths' scores and model loads."""
    if SERVED_STEP not in dirs:
        return True
    run_ids = register_checkpoints(api, SERVED_MODEL, {SERVED_STEP: dirs[SERVED_STEP]})
    console.print(
        f"registered step {SERVED_STEP} of {SERVED_MODEL} (a managed engine): {len(run_ids)} eval runs started"
    )
    status = wait_runs(api, run_ids, console, airflow)
    listed = api.get("/servers")
    listed.raise_for_status()
    servers = [
        s for s in listed.json()["servers"] if s["model"] == SERVED_MODEL and s["checkpoint"] == f"step {SERVED_STEP}"
    ]
    for srv in servers:
        console.print(
            f"model server {srv['id']}: {srv['engine']} {srv['engine_version']} at {srv['base_url']}, "
            f"{srv['loads']} load(s), {srv['requests_served']} requests served, {srv['state']}"
            + (f" ({srv['reason']})" if srv["reason"] else "")
        )
    console.print(served_table(api, SERVED_STEP, servers))
    return all(st == RunStatus.COMPLETED for st in status.values())


def train_and_evaluate(stack: Stack, console: Console) -> bool:
    """`vlmevals demo` after bring-up: train (cached), then register, wait and print through the API."""
    from vlmevals.devtools.demo.train import CKPT_DIR_NAME, train_checkpoints

    t0, cpu0 = time.monotonic(), time.process_time()
    with console.status("training the demo model on CPU (cached once done)"):
        dirs = train_checkpoints(get_settings().models_dir / CKPT_DIR_NAME)
    took, cpu = time.monotonic() - t0, time.process_time() - cpu0
    console.print(f"[green]✓[/] checkpoints {sorted(dirs)} in {took:.0f} s ({cpu:.0f} CPU s)")
    headers = {"Authorization": f"Bearer {stack.token()}"}
    with (
        httpx.Client(base_url=stack.api_url, headers=headers, timeout=30) as airflow,
        httpx.Client(base_url=f"{stack.api_url}/api/evals", headers=headers, timeout=60) as api,
    ):
        wait_for_dag(airflow, EVAL_RUN_DAG_ID)
        return run_learning_demo(api, dirs, console, airflow)
