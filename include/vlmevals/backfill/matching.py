"""Backfill against the catalogue: the tree's names matched to tasks and models (or registered with
`create_unknown`), and the results recorded by earlier syncs."""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from vlmevals.backfill.outcomes import TaskInfo, guess_suffix
from vlmevals.backfill.report import Problem, SyncReport
from vlmevals.backfill.scanner import ResultRef
from vlmevals.db.models import SLUG_PATTERN, EvalRun, Model, Task
from vlmevals.runs.backfilled import SAMPLES_PENDING

# id, mtime_ns, status, primary metric, error, per-sample file still to be read (runs.backfilled.SAMPLES_PENDING)
Known = tuple[int, int | None, str, float | None, str | None, bool]


def slugify(name: str) -> str:
    """A catalogue name for a VLMEvalKit name (`Qwen2-VL-7B_Instruct` -> `qwen2-vl-7b_instruct`)."""
    slug = re.sub(r"[^a-z0-9._-]+", "-", name.lower()).strip("-._")[:128] or "unnamed"
    return slug if re.match(SLUG_PATTERN, slug) else f"x{slug}"[:128]


def ensure_catalogue(
    session: Session, unknown_models: set[str], unknown_tasks: dict[str, str], report: SyncReport
) -> None:
    """`create_unknown`: register what the tree has and the catalogue lacks (names slugified, marked as such)."""
    for vm in sorted(unknown_models):
        name = slugify(vm)
        if session.scalar(select(Model.id).where(Model.name == name)) is not None:
            name = slugify(f"{vm}-backfill")
        session.add(
            Model(
                name=name,
                display_name=vm,
                vlmeval_model=vm,
                gpus=1,
                description=f"created by backfill from {report.folder}",
            )
        )
        report.created_models.append(name)
    for data, suffix in sorted(unknown_tasks.items()):
        name = slugify(data)
        if session.scalar(select(Task.id).where(Task.name == name)) is not None:
            name = slugify(f"{data}-backfill")
        session.add(
            Task(
                name=name,
                display_name=data,
                vlmeval_data=data,
                primary_metric_suffix=suffix,
                primary_metric_key="Overall",
                description=f"created by backfill from {report.folder}",
            )
        )
        report.created_tasks.append(name)


Models = dict[str, list[tuple[int, str]]]  # vlmeval_model -> (id, name) of the models naming it
Tasks = dict[str, list[TaskInfo]]  # vlmeval_data -> the tasks naming it


def load_catalogue(session: Session) -> tuple[Models, Tasks]:
    models: Models = {}
    for mid, name, vm in session.execute(select(Model.id, Model.name, Model.vlmeval_model).order_by(Model.id)):
        models.setdefault(vm, []).append((mid, name))
    tasks: Tasks = {}
    cols = (Task.id, Task.name, Task.vlmeval_data, Task.primary_metric_suffix, Task.primary_metric_key)
    for tid, name, vd, suf, key, scale in session.execute(select(*cols, Task.metric_scale).order_by(Task.id)):
        tasks.setdefault(vd, []).append(TaskInfo(tid, name, suf, key, float(scale)))
    return models, tasks


def known_sources(session: Session, folder: str) -> dict[str, Known]:
    """Results under `folder` recorded by earlier syncs, by source path."""
    like = folder.rstrip("/").replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "/%"
    rows = session.execute(
        select(
            EvalRun.source_path,
            EvalRun.id,
            EvalRun.source_mtime_ns,
            EvalRun.status,
            EvalRun.primary_metric,
            EvalRun.error,
            EvalRun.metrics.has_key(SAMPLES_PENDING),
        ).where(EvalRun.source_path.like(like, escape="\\"))
    )
    return {sp: (rid, mt, st, pm, er, bool(p)) for sp, rid, mt, st, pm, er, p in rows if sp is not None}


def _unmatched_reason(r: ResultRef, ms: list[tuple[int, str]], ts: list[TaskInfo]) -> str:
    if not ms:
        return (
            f"no model with vlmeval_model={r.model!r}; register it (POST /api/evals/models, the seed "
            "file) or sync with --create-unknown"
        )
    if len(ms) > 1:
        return f"vlmeval_model={r.model!r} matches several models ({', '.join(n for _, n in ms)})"
    if not ts:
        return (
            f"no task with vlmeval_data={r.data!r}; register it (POST /api/evals/tasks, the seed file) "
            "or sync with --create-unknown"
        )
    return f"vlmeval_data={r.data!r} matches several tasks ({', '.join(t.name for t in ts)})"


def match(
    todo: list[ResultRef], models: Models, tasks: Tasks, report: SyncReport
) -> list[tuple[ResultRef, int, TaskInfo]]:
    """(result, model id, task) for each result naming exactly one model and one task; the others reported."""
    matched: list[tuple[ResultRef, int, TaskInfo]] = []
    for r in todo:
        ms, ts = models.get(r.model, []), tasks.get(r.data, [])
        if len(ms) == 1 and len(ts) == 1:
            matched.append((r, ms[0][0], ts[0]))
        else:
            report.unknown.append(Problem(r.source_path, _unmatched_reason(r, ms, ts), r.model, r.data))
    return matched


def create_missing(session: Session, todo: list[ResultRef], models: Models, tasks: Tasks, report: SyncReport) -> bool:
    """`create_unknown`: register the models and tasks `todo` names that the catalogue lacks; True if any."""
    missing_models = {r.model for r in todo if r.model not in models}
    missing_tasks: dict[str, str] = {}
    for r in todo:
        if r.data not in tasks and r.data not in missing_tasks:
            missing_tasks[r.data] = guess_suffix(r)
    if missing_models or missing_tasks:
        ensure_catalogue(session, missing_models, missing_tasks, report)
    return bool(missing_models or missing_tasks)
