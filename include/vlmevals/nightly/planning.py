"""Nightly re-evaluation: which enrolled pairs to run, which to skip and why, and the runs it creates.

A pair is skipped when its last completed run has the same fingerprint hash as now (same toolkit, model and
weights, dataset md5, judge, generation settings: see vlmevals.results.fingerprint), unless forced; a pair that already
has a queued or running evaluation is never doubled up (the database's one-active-run index has the last word:
a pair another path triggers between the plan and the insert is skipped as active too).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from vlmevals.catalogue.specs import model_spec, task_spec
from vlmevals.core.constants import EVAL_RUN_DAG_ID
from vlmevals.core.errors import ConflictError
from vlmevals.core.settings import Settings, get_settings
from vlmevals.core.vocabulary import RunStatus, TriggeredBy
from vlmevals.db.models import Enrolment, EvalRun, Model, SuiteTask, Task
from vlmevals.results import fingerprint
from vlmevals.results.counted import full_dataset
from vlmevals.runs import lifecycle as runs

log = logging.getLogger(__name__)


@dataclass
class Decision:
    task: str
    model: str
    action: str  # trigger | skip
    reason: str  # kind of reason: new, changed, forced, unchanged, active
    detail: str
    fingerprint_hash: str | None = None
    last_run_id: int | None = None
    eval_run_id: int | None = None


Pair = tuple[int, int]  # task id, model id


def _suite_tasks(session: Session) -> dict[int, list[int]]:
    rows = session.execute(select(SuiteTask.suite_id, SuiteTask.task_id)).all()
    out: dict[int, list[int]] = {}
    for suite_id, task_id in rows:
        out.setdefault(suite_id, []).append(task_id)
    return out


def _row_pairs(r: Enrolment, task_ids: list[int], model_ids: list[int], suites: dict[int, list[int]]) -> set[Pair]:
    """The pairs one enabled enrolment row covers, but for a suite alone (that needs the others first)."""
    tasks = suites.get(r.suite_id, []) if r.suite_id else ([r.task_id] if r.task_id else task_ids)
    models = [r.model_id] if r.model_id else model_ids
    return {(t, m) for t in tasks for m in models}


def _models_on(session: Session, tasks: list[int], pairs: set[Pair]) -> set[int]:
    """A suite alone: every model enrolled on one of its tasks or with a completed run on one."""
    ran = session.scalars(
        select(EvalRun.model_id).where(EvalRun.task_id.in_(tasks), EvalRun.status == RunStatus.COMPLETED).distinct()
    )
    return {m for t, m in pairs if t in tasks} | set(ran)


def resolve_pairs(session: Session) -> list[tuple[Task, Model]]:
    """Every (task, model) the enrolments cover, by name, each once; pair exclusions (enabled = false) win.

    A suite with a model is that model on every task of the suite; a suite alone, every model that another
    enrolment puts on one of the suite's tasks or that has a completed run on one, on every task of the suite.
    """
    rows = session.scalars(select(Enrolment)).all()
    all_tasks = {t.id: t for t in session.scalars(select(Task))}
    all_models = {m.id: m for m in session.scalars(select(Model))}
    suites = _suite_tasks(session)
    excluded = {(r.task_id, r.model_id) for r in rows if not r.enabled and r.task_id and r.model_id}
    enabled = [r for r in rows if r.enabled]
    pairs: set[Pair] = set()
    for r in enabled:
        if not (r.suite_id and not r.model_id):
            pairs |= _row_pairs(r, list(all_tasks), list(all_models), suites)
    for r in enabled:
        if r.suite_id and not r.model_id:
            tasks = suites.get(r.suite_id, [])
            pairs |= {(t, m) for t in tasks for m in _models_on(session, tasks, pairs)}
    out = [(all_tasks[t], all_models[m]) for t, m in pairs - excluded]
    return sorted(out, key=lambda p: (p[0].name, p[1].name))


def current_fingerprint(task: Task, model: Model, settings: Settings) -> tuple[dict[str, Any], str]:
    """What a run of the pair would record now (the defaults a nightly run uses: no limit, the default judge)."""
    return fingerprint.compute(
        task=task_spec(task),
        model=model_spec(model),
        settings=settings,
        judge=None,
        limit=None,
        with_environment=False,
    )


def last_completed(session: Session, task_id: int, model_id: int) -> EvalRun | None:
    """The pair's last completed full-dataset run: a smoke test on a few samples is not what a nightly re-run
    would reproduce, so it neither skips nor triggers one."""
    return session.scalar(
        select(EvalRun)
        .where(EvalRun.task_id == task_id, EvalRun.model_id == model_id, EvalRun.status == RunStatus.COMPLETED)
        .where(full_dataset(EvalRun))
        .order_by(EvalRun.finished_at.desc().nulls_last(), EvalRun.id.desc())
        .limit(1)
    )


def _changed_parts(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    parts = [
        p
        for p in fingerprint.HASHED_PARTS
        if fingerprint.fingerprint_hash({p: old.get(p)}) != fingerprint.fingerprint_hash({p: new.get(p)})
    ]
    return [fingerprint.model_change(old, new) if p == "model" else p for p in parts]


def plan(session: Session, *, force: bool = False, settings: Settings | None = None) -> list[Decision]:
    """Trigger or skip, with the reason, for every enrolled pair."""
    settings = settings or get_settings()
    out: list[Decision] = []
    for task, model in resolve_pairs(session):
        active = runs.find_active_run(session, task.id, model.id)
        if active is not None:
            out.append(
                Decision(
                    task.name,
                    model.name,
                    "skip",
                    "active",
                    f"run {active.id} is already {active.status}",
                    last_run_id=active.id,
                )
            )
            continue
        fp, digest = current_fingerprint(task, model, settings)
        last = last_completed(session, task.id, model.id)
        if last is None:
            d = Decision(task.name, model.name, "trigger", "new", "no completed run yet", digest)
        elif force:
            d = Decision(
                task.name, model.name, "trigger", "forced", f"forced (last completed run {last.id})", digest, last.id
            )
        elif last.fingerprint_hash == digest:
            d = Decision(
                task.name,
                model.name,
                "skip",
                "unchanged",
                f"unchanged since run {last.id} (fingerprint {digest[:12]})",
                digest,
                last.id,
            )
        elif not last.fingerprint_hash:
            d = Decision(
                task.name,
                model.name,
                "trigger",
                "changed",
                f"run {last.id} has no fingerprint (backfilled or older)",
                digest,
                last.id,
            )
        else:
            parts = _changed_parts(last.fingerprint or {}, fp) or ["fingerprint"]
            d = Decision(
                task.name,
                model.name,
                "trigger",
                "changed",
                f"{', '.join(parts)} changed since run {last.id}",
                digest,
                last.id,
            )
        out.append(d)
    return out


def _dag_run_prefix(nightly_run_id: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_.:+" else "_" for c in nightly_run_id)[:150]
    return f"nightly__{safe}__"


def _trigger(run_id: int, dag_run_id: str) -> dict[str, Any]:
    return {"conf": {"eval_run_id": run_id, "triggered_by": TriggeredBy.NIGHTLY}, "trigger_run_id": dag_run_id}


def _create_one(session: Session, d: Decision, prefix: str, user: str | None) -> dict[str, Any] | None:
    """The pair's run, or None (the decision turned into a skip) when another path got there first (the
    refused insert rolls back to its savepoint: the session stays usable)."""
    try:
        run = runs.create_run(
            session, d.task, d.model, triggered_by=TriggeredBy.NIGHTLY, user=user, dag_id=EVAL_RUN_DAG_ID
        )
        runs.bind_dag_run(run, EVAL_RUN_DAG_ID, f"{prefix}{run.id}")
        d.eval_run_id = run.id
        return _trigger(run.id, str(run.dag_run_id))
    except ConflictError as err:  # the one-active-run index: a plugin/REST trigger of the pair won the race
        d.action, d.reason, d.detail, d.last_run_id = "skip", "active", str(err).split(";")[0], err.existing_id
        return None


def create_runs(
    session: Session, decisions: list[Decision], *, nightly_run_id: str, user: str | None = None
) -> list[dict[str, Any]]:
    """Record an eval run (triggered_by=nightly) per pair to trigger, bound to the eval_run DAG run id it will
    get; returns what the trigger step needs. A pair that meanwhile got an active run is skipped instead."""
    prefix = _dag_run_prefix(nightly_run_id)
    made = [_create_one(session, d, prefix, user) for d in decisions if d.action == "trigger"]
    return [t for t in made if t is not None]


def pending_from_earlier_attempt(session: Session, nightly_run_id: str) -> list[dict[str, Any]]:
    """Runs a failed earlier attempt of this nightly run recorded but never triggered: triggered now, so no
    row stays queued without its DAG run (the plan itself skips them as active)."""
    prefix = _dag_run_prefix(nightly_run_id)
    rows = session.execute(
        select(EvalRun.id, EvalRun.dag_run_id).where(
            EvalRun.status == RunStatus.QUEUED, EvalRun.dag_run_id.startswith(prefix, autoescape=True)
        )
    ).all()
    return [_trigger(rid, str(drid)) for rid, drid in rows]


def summarise(decisions: list[Decision]) -> dict[str, Any]:
    triggered = [d for d in decisions if d.action == "trigger"]
    skipped = [d for d in decisions if d.action == "skip"]
    return {
        "pairs": len(decisions),
        "triggered": len(triggered),
        "skipped": len(skipped),
        "triggered_by_reason": dict(Counter(d.reason for d in triggered)),
        "skipped_by_reason": dict(Counter(d.reason for d in skipped)),
        "decisions": [asdict(d) for d in decisions],
    }


def summary_text(summary: dict[str, Any]) -> str:
    """One line for the DAG run note and the task log."""

    def reasons(kind: str) -> str:
        got = summary[f"{kind}_by_reason"]
        return f" ({', '.join(f'{v} {k}' for k, v in sorted(got.items()))})" if got else ""

    return (
        f"{summary['pairs']} enrolled pairs: {summary['triggered']} triggered{reasons('triggered')}, "
        f"{summary['skipped']} skipped{reasons('skipped')}"
    )


def plan_and_create(
    session: Session,
    *,
    force: bool,
    nightly_run_id: str,
    user: str | None = None,
    settings: Settings | None = None,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The nightly DAG's planning step, in the caller's transaction: decide, record the runs, log every decision."""
    earlier = pending_from_earlier_attempt(session, nightly_run_id)
    decisions = plan(session, force=force, settings=settings)
    triggers = earlier + create_runs(session, decisions, nightly_run_id=nightly_run_id, user=user)
    summary = summarise(decisions)
    for d in decisions:
        log.info(
            "%s %s x %s: %s%s",
            d.action.upper(),
            d.task,
            d.model,
            d.detail,
            f" -> eval run {d.eval_run_id}" if d.eval_run_id else "",
        )
    summary["text"] = summary_text(summary)
    log.info("nightly plan: %s", summary["text"])
    return triggers, summary
