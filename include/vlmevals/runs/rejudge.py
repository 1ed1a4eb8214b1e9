"""Re-judging a finished run: a new eval run of the same task x model (and checkpoint) that scores the source
run's predictions with another judge, without inference (the `queue` step branches straight to `scoring`).

The new run records `source_run_id`; both stay on the boards, and `compare` between them shows where the judges
disagree. Refused, naming the fix: a source that is not completed, ran on a sample limit (VLMEvalKit's
`--mode eval` checks the predictions against the whole dataset), has no predictions any more, or was judged by
the same judge already (unless `force`). A re-judge is `forced` past the one-active-run rule: it holds no GPU
and does not race an inference of the pair.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from vlmevals.catalogue.specs import model_spec
from vlmevals.core.constants import EVAL_RUN_DAG_ID
from vlmevals.core.errors import ConflictError, InvalidRequestError, NotFoundError
from vlmevals.core.settings import Settings
from vlmevals.core.vocabulary import RunStatus, TriggeredBy
from vlmevals.db.engine import session_scope
from vlmevals.db.models import EvalRun
from vlmevals.runs import lifecycle as runs
from vlmevals.runs.triggering import Triggered, dag_run_id_for, start_dag_run
from vlmevals.vlmevalkit import outputs


def judge_of(run: EvalRun, settings: Settings) -> str:
    """The judge that scored a run: its fingerprint's, else its option, else the service default."""
    recorded = ((run.fingerprint or {}).get("judge") or {}).get("name")
    return str(recorded or (run.options or {}).get("judge") or settings.judge)


def source_predictions(run: EvalRun) -> Path:
    """The prediction file of a run, or InvalidRequestError naming where it should be."""
    model = model_spec(run.model, run.checkpoint).vlmeval_model
    pred_root = Path(run.artifacts_dir or runs.artifacts_dir_for(run.id)) / model
    found = outputs.prediction_file(pred_root, model, run.task.vlmeval_data)
    if found is None:
        raise InvalidRequestError(
            f"eval run {run.id} has no predictions to re-judge: {pred_root / f'{model}_{run.task.vlmeval_data}.xlsx'}"
            " is missing (artifacts cleaned up?); evaluate the task x model again instead"
        )
    return found


def check_source(session: Session, source_id: int, judge: str, force: bool, settings: Settings) -> EvalRun:
    """The run to re-judge, or the refusal (404, 409, 400) that says what to do instead."""
    src = session.get(EvalRun, source_id)
    if src is None:
        raise NotFoundError(f"no eval run with id {source_id} to re-judge")
    if src.status != RunStatus.COMPLETED:
        raise ConflictError(
            f"eval run {source_id} is {src.status}: only a completed run's predictions can be re-judged; "
            "wait until it completes, or evaluate the task x model again",
            existing_id=source_id,
        )
    if src.sample_limit is not None:
        raise InvalidRequestError(
            f"eval run {source_id} evaluated only {src.sample_limit} samples (limit): VLMEvalKit re-scores complete "
            "predictions only; re-judge a run of the whole dataset"
        )
    source_predictions(src)
    used = judge_of(src, settings)
    if judge == used and not force:
        raise ConflictError(
            f"eval run {source_id} was already judged by {used}; name another judge, or send force=true to judge "
            "it again with the same one",
            existing_id=source_id,
        )
    return src


def create_rejudge(
    session: Session,
    source_id: int,
    *,
    judge: str | None,
    force: bool,
    settings: Settings,
    triggered_by: str,
    user: str | None,
    dag_id: str = EVAL_RUN_DAG_ID,
    dag_run_id: str | None = None,
) -> EvalRun:
    """The queued re-judge run (`source_run_id` set) of a checked source."""
    judge = judge or settings.judge
    src = check_source(session, source_id, judge, force, settings)
    options = {"judge": judge, **{k: v for k, v in (src.options or {}).items() if k in ("api_nproc", "api_retry")}}
    run = runs.create_run(
        session,
        src.task.name,
        src.model.name,
        triggered_by=triggered_by,
        user=user,
        options=options,
        dag_id=dag_id,
        dag_run_id=dag_run_id,
        forced=True,
        checkpoint_id=src.checkpoint_id,
    )
    run.source_run_id = src.id
    runs.record_preparation(session, run.id, f"re-judge of eval run {src.id} with {judge}")
    session.flush()
    return run


def trigger_rejudge(
    engine: Engine, source_id: int, *, judge: str | None, force: bool, user: str | None, settings: Settings
) -> Triggered:
    """The re-judge run and its DAG run (the row commits first, as `triggering.trigger` does)."""
    with session_scope(engine) as s:
        run = create_rejudge(
            s, source_id, judge=judge, force=force, settings=settings, triggered_by=TriggeredBy.API, user=user
        )
        runs.bind_dag_run(run, EVAL_RUN_DAG_ID, dag_run_id_for(run.id))
        run_id, dag_run_id = run.id, str(run.dag_run_id)
        conf = {"eval_run_id": run_id, "task": run.task.name, "model": run.model.name, "triggered_by": TriggeredBy.API}
    return start_dag_run(engine, run_id, dag_run_id, conf, user)
