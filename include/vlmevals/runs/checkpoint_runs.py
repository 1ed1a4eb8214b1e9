"""Registering a checkpoint and evaluating it on its suite: one eval run per task of the suite, each of the
model at that checkpoint.

The checkpoint row and its runs are written in one transaction, after every check: a refused checkpoint
leaves nothing behind. From the API the `eval_run` DAG runs are then created one by one (a run Airflow
refuses is marked failed and listed); when Airflow starts none of them, the checkpoint and its runs are
removed again and the request fails (503). From the `eval_checkpoint` DAG (asset events) the rows are
created here and the DAG fans out one `eval_run` DAG run per row, as `eval_suite` does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session

from vlmevals.airflow import dag_runs
from vlmevals.catalogue.checkpoints import register, to_public
from vlmevals.catalogue.schemas.checkpoints import CheckpointCreate, CheckpointEvent, CheckpointPublic
from vlmevals.core.errors import EvalsError, InvalidRequestError
from vlmevals.core.vocabulary import TriggeredBy
from vlmevals.db.engine import session_scope
from vlmevals.db.models import Checkpoint, EvalRun, EvalRunEvent
from vlmevals.runs import lifecycle as runs
from vlmevals.runs import triggering
from vlmevals.runs.suite_runs import SuiteTrigger, child_run_ids, queue_task_run

# keys Airflow itself adds to an asset event's extra (POST /api/v2/assets/events sets from_rest_api)
AIRFLOW_EXTRA_KEYS = ("from_rest_api",)
EVENT_FIELDS = "model, step or label, weights_path or hub_revision, and optionally suite"


@dataclass
class CheckpointTrigger:
    """A registered checkpoint and what its suite trigger did, task by task."""

    checkpoint: CheckpointPublic
    runs: SuiteTrigger
    kwargs: list[dict[str, Any]] = field(default_factory=list)  # TriggerDagRunOperator kwargs (DAG path)


def _register_with_runs(
    s: Session,
    model_name: str,
    body: CheckpointCreate,
    *,
    user: str | None,
    run_ids: Callable[[int], str],
    triggered_by: str,
) -> CheckpointTrigger:
    cp, suite = register(s, model_name, body, user=user)
    out = CheckpointTrigger(to_public(cp), SuiteTrigger(suite.name, model_name))
    for member in suite.members:
        got = queue_task_run(
            s,
            member.task.name,
            model_name,
            out.runs,
            dag_run_id_for=run_ids,
            triggered_by=triggered_by,
            user=user,
            checkpoint_id=cp.id,
        )
        if got is not None:
            out.kwargs.append(got)
    return out


def register_and_trigger(
    engine: Engine, model_name: str, body: CheckpointCreate, *, user: str | None
) -> CheckpointTrigger:
    """POST /models/{name}/checkpoints: the checkpoint, its runs, then their DAG runs. Owns its transactions:
    the rows are committed before Airflow is asked, a refusal is recorded (or the checkpoint discarded) after."""
    with session_scope(engine) as s:
        out = _register_with_runs(
            s, model_name, body, user=user, run_ids=triggering.dag_run_id_for, triggered_by=TriggeredBy.API
        )
    started = []
    for e in out.runs.started:
        conf = {"eval_run_id": e["run_id"], "task": e["task"], "model": model_name, "triggered_by": TriggeredBy.API}
        try:
            e["dag_run_id"] = dag_runs.create_dag_run(e["dag_run_id"], conf, user)
        except Exception as err:  # the row must not stay queued forever
            with session_scope(engine) as s:
                runs.mark_failed(s, e["run_id"], f"could not start the Airflow DAG run: {err}")
            out.runs.failed.append({"task": e["task"], "error": str(err)})
        else:
            started.append(e)
    out.runs.started = started
    if out.runs.failed and not started:
        with session_scope(engine) as s:
            discard(s, out.checkpoint.id)
        raise dag_runs.AirflowTriggerError(
            f"Airflow started none of the checkpoint's runs ({out.runs.failed[0]['error']}); nothing was "
            "registered, register the checkpoint again once the eval_run DAG is parsed"
        )
    return out


def discard(session: Session, checkpoint_id: int) -> None:
    """Remove a checkpoint and its runs (none of which was started)."""
    ids = list(session.scalars(select(EvalRun.id).where(EvalRun.checkpoint_id == checkpoint_id)))
    session.execute(delete(EvalRunEvent).where(EvalRunEvent.run_id.in_(ids)))
    session.execute(delete(EvalRun).where(EvalRun.id.in_(ids)))
    session.execute(delete(Checkpoint).where(Checkpoint.id == checkpoint_id))


def _field_errors(err: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'extra'}: {e['msg'].removeprefix('Value error, ')}"
        for e in err.errors()
    )


def parse_events(extras: list[Any]) -> list[CheckpointEvent]:
    """Every asset event's extra as a checkpoint; InvalidRequestError naming each bad event's fields."""
    got, bad = [], []
    for i, extra in enumerate(extras, start=1):
        if not isinstance(extra, dict):
            bad.append(f"event {i}: extra is {type(extra).__name__}, not an object")
            continue
        try:
            got.append(CheckpointEvent.model_validate({k: v for k, v in extra.items() if k not in AIRFLOW_EXTRA_KEYS}))
        except ValidationError as err:
            bad.append(f"event {i} (extra {extra}): {_field_errors(err)}")
    if bad:
        raise InvalidRequestError(
            f"{len(bad)} of {len(extras)} asset event(s) refused, nothing registered: "
            + " | ".join(bad)
            + f". Fix: post the event again with extra holding {EVENT_FIELDS} (see the README, 'Checkpoints')"
        )
    return got


def register_events(
    session: Session, extras: list[Any], *, parent_run_id: str, user: str | None
) -> list[CheckpointTrigger]:
    """The `eval_checkpoint` DAG's first step: every event validated, then every checkpoint and its runs in
    the caller's transaction (any refusal raises: the caller's rollback registers none of them)."""
    events = parse_events(extras)
    run_ids = child_run_ids("checkpoint", parent_run_id)
    out = []
    for i, ev in enumerate(events, start=1):
        body = CheckpointCreate.model_validate(ev.model_dump(exclude={"model"}))
        try:
            out.append(
                _register_with_runs(
                    session, ev.model, body, user=user, run_ids=run_ids, triggered_by=TriggeredBy.CHECKPOINT
                )
            )
        except EvalsError as err:
            what = f"asset event {i} (model {ev.model!r}) refused, nothing registered"
            raise InvalidRequestError(f"{what}: {err}") from err
    return out
