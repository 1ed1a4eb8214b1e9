"""The demo's waiting phase: runs as the API reports them become one clean line per change in a pipe, and a
rich progress display (runs done / total, samples per run, current task) on a terminal."""

from __future__ import annotations

import io
import re
from typing import Any

from rich.console import Console
from vlmevals.devtools.demo.progress import LiveReport, PlainReport, current_task, reporter, run_view

TASKS = ("demo-shapes-mcq", "demo-colors-vqa")


def _run(i: int, step: int, task: str, status: str, done: int = 0, **more: Any) -> dict[str, Any]:
    """A `GET /runs/{id}` body, trimmed to what the display reads."""
    ckpt = {"id": step + 1, "step": step, "label": None}
    return {"id": i, "task_name": task, "model_name": "demo-tiny-idefics3-trained", "checkpoint": ckpt} | {
        "status": status,
        "progress_done": done,
        "progress_total": 20 if status != "queued" else None,
        "primary_metric": None,
        "metric_scale": 1.0,
        "error": None,
        **more,
    }


POLLS = [  # three polls of two runs: queued -> inference -> scoring/completed
    [run_view(_run(1, 0, TASKS[0], "queued")), run_view(_run(2, 0, TASKS[1], "queued"))],
    [run_view(_run(1, 0, TASKS[0], "running", 7), "inference"), run_view(_run(2, 0, TASKS[1], "queued"))],
    [
        run_view(_run(1, 0, TASKS[0], "running", 12), "inference"),
        run_view(_run(2, 0, TASKS[1], "running", 3), "inference"),
    ],
    [
        run_view(_run(1, 0, TASKS[0], "completed", 20, primary_metric=0.45)),
        run_view(_run(2, 0, TASKS[1], "failed", 3, error="VLMEvalKit wrote no metric file\nsee the log")),
    ],
]


def _plain(polls: list[list[Any]]) -> str:
    out = io.StringIO()
    console = Console(file=out, width=80)  # a file: not a terminal
    with reporter(console) as report:
        assert isinstance(report, PlainReport)
        for views in polls:
            report.update(views)
    return out.getvalue()


def test_a_pipe_gets_one_plain_line_per_change_of_state_or_task() -> None:
    assert _plain(POLLS).splitlines() == [
        "run 1 step 0 demo-shapes-mcq: queued",
        "run 2 step 0 demo-colors-vqa: queued",
        "run 1 step 0 demo-shapes-mcq: running (inference) 7/20 samples",
        "run 2 step 0 demo-colors-vqa: running (inference) 3/20 samples",
        "run 1 step 0 demo-shapes-mcq: completed, score 45.0",
        "run 2 step 0 demo-colors-vqa: failed: VLMEvalKit wrote no metric file",
    ]  # 12/20 samples at the third poll is no new line: only state and task changes are


def test_plain_lines_have_no_escape_codes_even_when_colour_is_forced() -> None:
    out = io.StringIO()
    report = PlainReport(Console(file=out, width=80, force_terminal=False, color_system="truecolor"))
    for views in POLLS:
        report.update(views)
    assert "\x1b" not in out.getvalue() and "\r" not in out.getvalue()


def test_run_view_reads_the_runs_api_fields() -> None:
    v = run_view(_run(5, 400, TASKS[1], "completed", 20, primary_metric=65.0, metric_scale=100.0))
    assert (v.label, v.done, v.total, v.finished, v.score) == ("step 400 demo-colors-vqa", 20, 20, True, 65.0)
    plain = run_view({"id": 6, "task_name": "t", "model_name": "m", "checkpoint": None, "status": "running"})
    assert plain.line() == "run 6 m t: running"  # no checkpoint, no total yet


def test_the_current_task_prefers_a_running_one() -> None:
    tis = [{"task_id": "queue", "state": "success"}, {"task_id": "scoring", "state": "scheduled"}]
    assert current_task(tis) == "scoring"
    assert current_task([*tis, {"task_id": "inference", "state": "running"}]) == "inference"
    assert current_task([{"task_id": "queue", "state": "success"}]) is None


def test_a_terminal_gets_bars_with_runs_done_samples_and_the_current_task() -> None:
    console = Console(record=True, width=100, force_terminal=True)
    with reporter(console) as report:
        assert isinstance(report, LiveReport)
        report.update(POLLS[2])
        shown = report.progress.get_renderable()
        console.print(shown)
    text = re.sub(r"\s+", " ", console.export_text())
    assert "runs finished" in text and "0/2" in text
    assert "run 1 step 0 demo-shapes-mcq" in text and "12/20" in text and "running (inference)" in text
    assert "run 2 step 0 demo-colors-vqa" in text and "3/20" in text
    assert "━" in text  # a bar, not only text

    report.update(POLLS[3])
    tasks = {t.description.strip(): t for t in report.progress.tasks}
    assert tasks["runs finished"].completed == 2
    assert tasks["run 1 step 0 demo-shapes-mcq"].completed == 20
    assert tasks["run 1 step 0 demo-shapes-mcq"].fields["state"] == "completed, score 45.0"
    assert tasks["run 2 step 0 demo-colors-vqa"].fields["state"] == "failed"
    assert tasks["run 2 step 0 demo-colors-vqa"].stop_time is not None  # a failed run's clock stops too
