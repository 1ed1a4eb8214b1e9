"""The `queue` step: validate the request and record (or adopt) the eval run before any GPU slot is taken.

A DAG run for a pair that already has an active run (and no `force` in its conf) is refused by the database's
one-active-run index: it still gets its row, failed with the active run's id, and the task fails saying so.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from vlmevals.core.constants import SCORING_TASK_ID
from vlmevals.core.errors import ConflictError, InvalidRequestError
from vlmevals.core.settings import Settings, get_settings
from vlmevals.core.vocabulary import TriggeredBy
from vlmevals.db.engine import session_scope
from vlmevals.gpu.slots import inference_task_id, slots_for
from vlmevals.pipeline import rejudge
from vlmevals.pipeline.context import load_context
from vlmevals.pipeline.prepare import prepare_inputs
from vlmevals.pipeline.serve import SERVED_BRANCH, join_server
from vlmevals.runs import lifecycle as runs
from vlmevals.vlmevalkit.command import build_invocation, python_executable
from vlmevals.vlmevalkit.versions import vlmeval_version

OPTION_KEYS = ("judge", "reuse", "limit", "api_nproc", "api_retry")
SOURCES_BY_RUN_TYPE = {"scheduled": TriggeredBy.NIGHTLY, "backfill": TriggeredBy.BACKFILL}
# the conf's values before 0009 (README examples, existing scripts) still say where a DAG run came from
RENAMED_SOURCES: dict[str, str] = {"rest": TriggeredBy.AIRFLOW_REST, "ui": TriggeredBy.FORM}


def _create(
    engine: Engine,
    conf: dict[str, Any],
    settings: Settings,
    *,
    dag_id: str,
    dag_run_id: str,
    run_type: str,
    user: str | None,
) -> int:
    """A new run for a DAG run started without `eval_run_id` (Airflow form or REST); ConflictError if refused."""
    given = str(conf.get("triggered_by") or "")
    source = SOURCES_BY_RUN_TYPE.get(run_type) or RENAMED_SOURCES.get(given, given) or TriggeredBy.FORM
    if conf.get("source_run_id"):  # a re-judge: task and model are the source run's
        return rejudge.create_from_conf(
            engine, conf, settings, triggered_by=source, user=user, dag_id=dag_id, dag_run_id=dag_run_id
        )
    task_name, model_name = conf.get("task"), conf.get("model")
    if not task_name or not model_name:
        raise InvalidRequestError("conf needs 'task' and 'model' (catalogue names), or 'eval_run_id'")
    options = {k: conf[k] for k in OPTION_KEYS if conf.get(k) not in (None, "")}
    refused: ConflictError | None = None
    with session_scope(engine) as s:
        try:
            run = runs.create_run(
                s,
                task_name,
                model_name,
                triggered_by=source,
                user=user,
                options=options,
                dag_id=dag_id,
                dag_run_id=dag_run_id,
                forced=bool(conf.get("force")),
            )
            return run.id
        except ConflictError as err:
            refused = ConflictError(f'{err} (in the DAG run conf: "force": true)', existing_id=err.existing_id)
            runs.record_refused(
                s,
                task_name,
                model_name,
                triggered_by=source,
                user=user,
                dag_id=dag_id,
                dag_run_id=dag_run_id,
                error=str(refused),
            )
    raise refused


def _check(settings: Settings, run_id: int, engine: Engine) -> tuple[int, str | None, int | None]:
    """(GPU slots, VLMEvalKit version, dataset rows); InvalidRequestError on what cannot run."""
    ctx = load_context(engine, run_id)
    try:
        slots = slots_for(ctx.model.gpus)
    except ValueError as err:
        raise InvalidRequestError(f"model {ctx.model_name!r} cannot run: {err}") from err
    python = python_executable(settings)
    version = vlmeval_version(python, str(settings.vlmeval_root) if settings.vlmeval_root else None)
    info = prepare_inputs(engine, run_id, settings)  # judge, dataset, Hub weights: before any GPU
    if ctx.model.model_spec is not None:
        # fail now on a spec that cannot be turned into a config (e.g. missing dataset class)
        build_invocation(settings=settings, task=ctx.task, model=ctx.model, work_dir=ctx.artifacts, mode="infer")
    total = min(info.rows, ctx.options.limit) if info.rows and ctx.options.limit else info.rows
    ctx.artifacts.mkdir(parents=True, exist_ok=True)
    return slots, version, total


def queue_step(
    engine: Engine,
    conf: dict[str, Any],
    *,
    dag_id: str,
    dag_run_id: str,
    run_type: str,
    user: str | None,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Validate the request and record (or adopt) the eval run; fail before any GPU slot is taken."""
    settings = settings or get_settings()
    if conf.get("eval_run_id"):
        with session_scope(engine) as s:
            run_id = runs.adopt_run(s, int(conf["eval_run_id"]), dag_id=dag_id, dag_run_id=dag_run_id).id
    else:
        run_id = _create(engine, conf, settings, dag_id=dag_id, dag_run_id=dag_run_id, run_type=run_type, user=user)
    try:
        rejudged = rejudge.prepare(engine, run_id, settings)  # None: not a re-judge
        slots, version, total = rejudged or _check(settings, run_id, engine)
    except Exception as err:
        with session_scope(engine) as s:
            runs.mark_failed(s, run_id, str(err))
        raise
    with session_scope(engine) as s:
        runs.set_progress(s, run_id, 0, total)
        runs.set_vlmeval_version(s, run_id, version)
    if rejudged:  # a re-judge skips inference (and any server): its predictions are the source run's
        return {"eval_run_id": run_id, "slots": 0, "branch": [SCORING_TASK_ID]}
    server = join_server(engine, run_id, load_context(engine, run_id).model, settings)
    if server is not None:  # a served model: start (or join) its server, wait for it, then send the requests
        return {"eval_run_id": run_id, "slots": 0, "branch": list(SERVED_BRANCH), **server}
    return {"eval_run_id": run_id, "slots": slots, "branch": [inference_task_id(slots)]}
