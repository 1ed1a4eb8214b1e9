"""The demo's console: the overall board reads at 80 columns, and the wait reports each run as it moves."""

from __future__ import annotations

import io
from typing import Any

import httpx
import pytest
from rich.console import Console
from vlmevals.devtools.demo.flow import LABEL_WIDTH, column_labels, overall_table, wait_runs

DEMO = ["demo-shapes-mcq", "demo-colors-vqa", "demo-shapes-yorn"]
CORE = [
    "MMBench_DEV_EN",
    "MMStar",
    "MMMU_DEV_VAL",
    "MathVista_MINI",
    "HallusionBench",
    "AI2D_TEST",
    "OCRBench",
    "MMVet",
]


@pytest.mark.parametrize(
    ("tasks", "expected"),
    [
        (DEMO, ["mcq", "vqa", "yorn"]),
        (CORE, ["MMBench", "MMStar", "MMMU", "MathVis~", "Hallusi~", "AI2D", "OCRBench", "MMVet"]),
        (["a-x", "b-x", "x"], ["a", "b", "x"]),
        (["long-name-one", "long-name-two", "long-name-onf"], ["one", "two", "onf"]),
        (["abcdefghij-1", "abcdefghik-1"], ["t1", "t2"]),  # cut heads would clash: numbered
    ],
)
def test_column_labels_are_unique_and_short(tasks: list[str], expected: list[str]) -> None:
    labels = column_labels(tasks)
    assert [labels[t] for t in tasks] == expected
    assert len(set(labels.values())) == len(tasks)
    assert all(len(v) <= LABEL_WIDTH for v in labels.values())


def _row(rank: int | None, model: str, value: float, tasks: list[str]) -> dict[str, Any]:
    cells = {t: {"value": value} for t in tasks}
    return {"rank": rank, "model_name": model, "cells": cells, "average": value, "coverage": f"{len(tasks)}/3"}


def test_the_demo_board_tells_every_column_apart_at_80_columns() -> None:
    board = {
        "suite": {"name": "demo", "tasks": [{"task": t} for t in DEMO]},
        "data": [_row(1, "demo-tiny-idefics3-trained", 58.33, DEMO), _row(2, "demo-tiny-idefics3", 100.0, DEMO)],
        "partial": [_row(None, "demo-tiny-idefics3-other", 5.0, DEMO[:1])],
    }
    console = Console(record=True, width=80, file=io.StringIO())
    console.print(overall_table(board))
    text = console.export_text()
    lines = text.splitlines()
    assert all(len(line) <= 80 for line in lines)
    assert "…" not in text  # nothing truncated into look-alikes
    header = next(line for line in lines if "rank" in line)
    assert [c.strip() for c in header.strip("┃").split("┃")] == [
        "rank",
        "model",
        "mcq",
        "vqa",
        "yorn",
        "average",
        "tasks",
    ]
    assert any("demo-tiny-idefics3-trained" in line for line in lines)  # whole, on one line
    assert "mcq = demo-shapes-mcq, vqa = demo-colors-vqa, yorn = demo-shapes-yorn" in text


class FakeStack:
    """The evals API and Airflow's task instances as two polls see them: first running, then done."""

    def __init__(self) -> None:
        self.polls = 0

    def runs(self, request: httpx.Request) -> httpx.Response:
        run_id = int(request.url.path.rsplit("/", 1)[-1])
        self.polls += run_id == 1
        done = self.polls >= 2
        body = {
            "id": run_id,
            "task_name": DEMO[run_id - 1],
            "model_name": "m",
            "checkpoint": {"id": 1, "step": 100, "label": None},
            "status": "completed" if done else "running",
            "progress_done": 20 if done else 4,
            "progress_total": 20,
            "primary_metric": 0.5 if done else None,
            "metric_scale": 1.0,
            "dag_id": "eval_checkpoint",
            "dag_run_id": f"r{run_id}",
        }
        return httpx.Response(200, json=body)

    def airflow(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path.startswith("/api/v2/dags/eval_checkpoint/dagRuns/r"), request.url
        return httpx.Response(200, json={"task_instances": [{"task_id": "inference", "state": "running"}]})


def test_wait_runs_reports_each_run_through_the_api_until_all_end() -> None:
    fake = FakeStack()
    api = httpx.Client(base_url="http://evals", transport=httpx.MockTransport(fake.runs))
    airflow = httpx.Client(base_url="http://airflow", transport=httpx.MockTransport(fake.airflow))
    out = io.StringIO()
    status = wait_runs(api, [1, 2], Console(file=out, width=80), airflow, timeout_s=60)
    assert status == {1: "completed", 2: "completed"}
    assert out.getvalue().splitlines() == [
        "run 1 step 100 demo-shapes-mcq: running (inference) 4/20 samples",
        "run 2 step 100 demo-colors-vqa: running (inference) 4/20 samples",
        "run 1 step 100 demo-shapes-mcq: completed, score 50.0",
        "run 2 step 100 demo-colors-vqa: completed, score 50.0",
    ]
