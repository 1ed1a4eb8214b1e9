"""Live progress of the demo's eval runs while it waits for them (minutes on CPU): silence reads as a hang.

`RunView` is what one poll knows of a run (from `GET /runs/{id}` and, when it is active, the Airflow task that
is running). A terminal gets a rich progress display (runs done / total, one bar of samples per run with its
current task); a pipe or a log file gets one plain line per run each time its state or task changes, and one
when it ends, with no bars and no escape codes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from vlmevals.core.vocabulary import FINAL_STATUSES, RunStatus

TERMINAL = FINAL_STATUSES
ACTIVE_TI_STATES = ("running", "queued", "scheduled", "up_for_retry", "up_for_reschedule", "deferred")


@dataclass(frozen=True)
class RunView:
    """One run as a poll saw it."""

    id: int
    label: str
    status: str
    done: int
    total: int | None
    task: str | None = None
    score: float | None = None
    error: str | None = None

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL

    @property
    def state(self) -> str:
        """Status and current task: what a change of is worth a line."""
        return f"{self.status} ({self.task})" if self.task and not self.finished else self.status

    def line(self) -> str:
        """One plain line: `run 12 step 100 demo-shapes-mcq: running (inference) 7/20 samples`."""
        text = f"run {self.id} {self.label}: {self.state}"
        if self.finished:
            if self.score is not None:
                text += f", score {self.score:.1f}"
            if self.error:
                text += f": {self.error.splitlines()[0][:200]}"
            return text
        if self.total:
            text += f" {self.done}/{self.total} samples"
        return text


def run_view(run: dict[str, Any], task: str | None = None) -> RunView:
    """A RunView from a `GET /runs/{id}` body; `task`: the Airflow task now active in its DAG run."""
    ckpt = run.get("checkpoint") or {}
    where = f"step {ckpt['step']}" if ckpt.get("step") is not None else (ckpt.get("label") or run.get("model_name"))
    score = run.get("primary_metric")
    if score is not None:
        score = score * 100 / (run.get("metric_scale") or 100)
    return RunView(
        id=int(run["id"]),
        label=f"{where} {run.get('task_name', '?')}",
        status=str(run.get("status", "?")),
        done=int(run.get("progress_done") or 0),
        total=run.get("progress_total"),
        task=task,
        score=score,
        error=run.get("error"),
    )


def current_task(task_instances: list[dict[str, Any]]) -> str | None:
    """The task a DAG run is at: a running one first, else one waiting to run."""
    for states in (("running",), ACTIVE_TI_STATES):
        for ti in task_instances:
            if ti.get("state") in states:
                return str(ti["task_id"])
    return None


class PlainReport:
    """For pipes and log files: a line per run when its state changes or it ends."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.last: dict[int, str] = {}

    def __enter__(self) -> PlainReport:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, views: list[RunView]) -> None:
        for v in views:
            if self.last.get(v.id) != v.state:
                self.last[v.id] = v.state
                self.console.print(v.line(), markup=False, highlight=False)


class LiveReport:
    """For terminals: a rich progress display, runs done / total over one bar of samples per run."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(bar_width=20),
            MofNCompleteColumn(),
            TextColumn("{task.fields[state]}"),
            TimeElapsedColumn(),
            console=console,
        )
        self.overall: TaskID | None = None
        self.rows: dict[int, TaskID] = {}

    def __enter__(self) -> LiveReport:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def update(self, views: list[RunView]) -> None:
        done = sum(v.finished for v in views)
        if self.overall is None:
            self.overall = self.progress.add_task("runs finished", total=len(views), state="")
        self.progress.update(self.overall, completed=done, total=len(views))
        for v in views:
            state = v.state if not v.finished or v.score is None else f"{v.status}, score {v.score:.1f}"
            if v.id not in self.rows:
                self.rows[v.id] = self.progress.add_task(f"  run {v.id} {v.label}", total=v.total, state=state)
            completed = (v.total or v.done) if v.status == RunStatus.COMPLETED else v.done
            self.progress.update(self.rows[v.id], completed=completed, total=v.total, state=state)
            if v.finished:
                self.progress.stop_task(self.rows[v.id])  # its clock stops, failed or not


def reporter(console: Console) -> PlainReport | LiveReport:
    """Bars on a terminal, plain lines elsewhere (a pipe, `| tee`, CI logs)."""
    return LiveReport(console) if console.is_terminal and not console.is_dumb_terminal else PlainReport(console)
