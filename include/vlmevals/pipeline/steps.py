"""The steps of one evaluation, called by the `eval_run` DAG's tasks (which only wire them up).

queue -> inference -> scoring -> ingest_metrics, plus a teardown that guarantees a terminal state.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from vlmevals.catalogue.schemas import RunOptions
from vlmevals.core.errors import InvalidRequestError, VLMEvalFailure
from vlmevals.core.settings import Settings, get_settings
from vlmevals.db.engine import session_scope
from vlmevals.gpu import leases as gpus
from vlmevals.gpu.slots import inference_task_id, slots_for
from vlmevals.pipeline.prepare import prepare_inputs
from vlmevals.results import fingerprint
from vlmevals.runs import lifecycle as runs
from vlmevals.toolkit import hub
from vlmevals.toolkit import outputs as results
from vlmevals.toolkit.command import (
    ModelSpec,
    TaskSpec,
    build_invocation,
    python_executable,
    vlmeval_version,
    write_config,
)
from vlmevals.toolkit.runner import run_streaming

log = logging.getLogger(__name__)


@dataclass
class RunContext:
    """Plain copy of what a step needs, so no ORM object outlives its session."""

    run_id: int
    status: str
    artifacts: Path
    options: RunOptions
    task: TaskSpec
    task_name: str
    metric_suffix: str
    metric_key: str
    model: ModelSpec
    model_name: str

    @property
    def pred_root(self) -> Path:
        # ms-vlmeval writes flat files into {work_dir}/{model}/
        return self.artifacts / self.model.vlmeval_model


def load_context(engine: Engine | None, run_id: int) -> RunContext:
    with session_scope(engine) as s:
        r = runs.get_run(s, run_id)
        t, m = r.task, r.model
        return RunContext(
            run_id=r.id,
            status=r.status,
            artifacts=Path(r.artifacts_dir or runs.artifacts_dir_for(r.id)),
            options=RunOptions.model_validate(r.options or {}),
            task=TaskSpec(t.vlmeval_data, t.vlmeval_dataset_class),
            task_name=t.name,
            metric_suffix=t.primary_metric_suffix,
            metric_key=t.primary_metric_key,
            model=ModelSpec(
                m.vlmeval_model,
                m.model_spec,
                m.endpoint_base_url,
                m.endpoint_key_env,
                m.gpus,
                m.launch_mode,
                m.revision,
            ),
            model_name=m.name,
        )


def queue_step(
    engine: Engine | None,
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
    eval_run_id = conf.get("eval_run_id")
    with session_scope(engine) as s:
        if eval_run_id:
            run = runs.adopt_run(s, int(eval_run_id), dag_id=dag_id, dag_run_id=dag_run_id)
        else:
            task_name, model_name = conf.get("task"), conf.get("model")
            if not task_name or not model_name:
                raise InvalidRequestError("conf needs 'task' and 'model' (catalogue names), or 'eval_run_id'")
            source = {"scheduled": "schedule", "backfill": "backfill"}.get(run_type) or conf.get("triggered_by")
            options = {
                k: conf[k]
                for k in ("judge", "reuse", "limit", "api_nproc", "api_retry")
                if conf.get(k) not in (None, "")
            }
            run = runs.create_run(
                s,
                task_name,
                model_name,
                triggered_by=source or "ui",
                user=user,
                options=options,
                dag_id=dag_id,
                dag_run_id=dag_run_id,
            )
        run_id, gpus = run.id, run.model.gpus
    ctx = load_context(engine, run_id)
    try:
        try:
            slots = slots_for(gpus)
        except ValueError as err:
            raise InvalidRequestError(str(err)) from err
        python = python_executable(settings)
        version = vlmeval_version(python, str(settings.vlmeval_root) if settings.vlmeval_root else None)
        info = prepare_inputs(engine, run_id, settings)  # judge, dataset, Hub weights: before any GPU
        if ctx.model.model_spec is not None:
            # fail now on a spec that cannot be turned into a config (e.g. missing dataset class)
            build_invocation(settings=settings, task=ctx.task, model=ctx.model, work_dir=ctx.artifacts, mode="infer")
    except Exception as err:
        runs.mark_failed(engine, run_id, str(err))
        raise
    total = min(info.rows, ctx.options.limit) if info.rows and ctx.options.limit else info.rows
    runs.set_progress(engine, run_id, 0, total)
    with session_scope(engine) as s:
        runs.get_run(s, run_id).vlmeval_version = version
    ctx.artifacts.mkdir(parents=True, exist_ok=True)
    return {"eval_run_id": run_id, "slots": slots, "inference_task": inference_task_id(slots)}


def _fail_on_status(ctx: RunContext, phase: str) -> None:
    entry = results.dataset_entry(results.load_status(ctx.pred_root), ctx.task.vlmeval_data)
    err = results.entry_error(entry)
    if err:
        raise VLMEvalFailure(
            f"VLMEvalKit {phase} failed for {ctx.model.vlmeval_model} x {ctx.task.vlmeval_data}: {err}"
        )


def _run_vlmeval(
    engine: Engine | None,
    ctx: RunContext,
    mode: str,
    settings: Settings,
    try_number: int,
    total: int | None,
    extra_env: dict[str, str] | None = None,
    on_tick: Callable[[], None] | None = None,
) -> None:
    inv = build_invocation(
        settings=settings,
        task=ctx.task,
        model=ctx.model,
        work_dir=ctx.artifacts,
        mode=mode,
        judge=ctx.options.judge,
        reuse=True,
        limit=ctx.options.limit,
        api_nproc=ctx.options.api_nproc,
        api_retry=ctx.options.api_retry,
    )
    write_config(inv, ctx.artifacts / "vlmeval_config.json")
    log.info("running: %s", inv.redacted())

    def tick() -> None:
        if on_tick is not None:  # e.g. the GPU lease's heartbeat
            on_tick()
        if mode in ("infer", "all"):
            runs.set_progress(
                engine,
                ctx.run_id,
                results.count_partial(ctx.pred_root, ctx.model.vlmeval_model, ctx.task.vlmeval_data),
                total,
            )

    res = run_streaming(
        inv.argv,
        artifacts=ctx.artifacts,
        env={**inv.env, **(extra_env or {})},
        cwd=ctx.artifacts,
        label=f"{mode} attempt {try_number}",
        on_tick=tick,
        tick_s=settings.progress_interval_s,
    )
    log.info("VLMEvalKit %s finished in %.1f s with exit code %s", mode, res.duration_s, res.returncode)
    if res.returncode != 0:
        last = "\n".join(res.stderr_tail.strip().splitlines()[-15:])
        raise VLMEvalFailure(f"VLMEvalKit {mode} exited with code {res.returncode}:\n{last}", retryable=True)


def inference_step(
    engine: Engine | None, run_id: int, try_number: int = 1, settings: Settings | None = None
) -> dict[str, Any]:
    settings = settings or get_settings()
    ctx = load_context(engine, run_id)
    if not runs.mark_running(engine, run_id, try_number):
        raise InvalidRequestError(f"eval run {run_id} is {ctx.status}; not running inference")
    ctx.pred_root.mkdir(parents=True, exist_ok=True)
    status_file = ctx.pred_root / results.STATUS_FILE
    if status_file.exists():  # an earlier attempt's verdict must not leak into this one
        shutil.move(status_file, ctx.pred_root / f"status.before-attempt{try_number}.json")
    if not ctx.options.reuse and try_number == 1:
        for p in ctx.pred_root.glob(f"*_{ctx.task.vlmeval_data}.pkl"):
            p.unlink()
    with session_scope(engine) as s:
        total = runs.get_run(s, run_id).progress_total
    resumed = results.count_partial(ctx.pred_root, ctx.model.vlmeval_model, ctx.task.vlmeval_data)
    if resumed:
        log.info("resuming: %s samples already answered by earlier attempts", resumed)
    offline, hub_env = hub.offline_model(ctx.model, settings)  # the queue step fetched Hub weights: no download now
    # the model's GPUs, exclusively, for as long as VLMEvalKit runs (CPU fallback on GPU-less workers)
    with gpus.leased(
        engine, ctx.model.gpus, holder=f"eval run {run_id} inference try {try_number}", run_id=run_id
    ) as lease:
        ctx = replace(ctx, model=lease.adapt(ctx.model))
        record_fingerprint(engine, ctx, settings, visible_devices=lease.cuda_visible_devices)
        _run_vlmeval(
            engine,
            replace(ctx, model=replace(ctx.model, model_spec=offline.model_spec)),
            inference_mode(ctx, settings),
            settings,
            try_number,
            total,
            extra_env={**lease.env(), **hub_env},
            on_tick=lease.heartbeat,
        )
    _fail_on_status(ctx, "inference")
    pred = results.prediction_file(ctx.pred_root, ctx.model.vlmeval_model, ctx.task.vlmeval_data)
    if pred is None:
        raise VLMEvalFailure(
            f"VLMEvalKit wrote no prediction file for {ctx.model.vlmeval_model} x "
            f"{ctx.task.vlmeval_data} in {ctx.pred_root}; see worker_stderr.log"
        )
    if total is not None:
        runs.set_progress(engine, run_id, total, total)
    return {"predictions": str(pred), "resumed_samples": resumed}


def record_fingerprint(
    engine: Engine | None, ctx: RunContext, settings: Settings, visible_devices: str | None = None
) -> None:
    """Store what determines this run's result, at inference time (see vlmevals.results.fingerprint)."""
    with session_scope(engine) as s:
        total = runs.get_run(s, ctx.run_id).progress_total
    fp, digest = fingerprint.compute(
        task=ctx.task,
        model=ctx.model,
        settings=settings,
        judge=ctx.options.judge,
        limit=ctx.options.limit,
        dataset_rows=total,
        visible_devices=visible_devices,
        hub_online=False,  # the commit the queue step downloaded, from the local cache
    )
    with session_scope(engine) as s:
        run = runs.get_run(s, ctx.run_id)
        run.fingerprint, run.fingerprint_hash = fp, digest


def inference_mode(ctx: RunContext, settings: Settings) -> str:
    """`all` when scoring is offline exact matching: it takes milliseconds, so the same VLMEvalKit process
    scores (saving a second ~7 s import and model-free start-up); `infer` when an LLM judge scores, so the
    GPU slot is released before the (slow, remote) judging starts in `scoring`."""
    if ctx.options.limit:  # VLMEvalKit's --mode eval checks completeness against the whole dataset
        return "all"
    return "all" if (ctx.options.judge or settings.judge) == "exact_matching" else "infer"


def scoring_step(engine: Engine | None, run_id: int, try_number: int = 1, settings: Settings | None = None) -> None:
    settings = settings or get_settings()
    ctx = load_context(engine, run_id)
    entry = results.dataset_entry(results.load_status(ctx.pred_root), ctx.task.vlmeval_data)
    scored = results.metric_file(ctx.pred_root, ctx.model.vlmeval_model, ctx.task.vlmeval_data, ctx.metric_suffix)
    if inference_mode(ctx, settings) == "all" and scored is not None and entry.get("metrics") is not None:
        log.info("already scored in the inference process: %s", scored.name)
    else:
        _run_vlmeval(engine, ctx, "eval", settings, try_number, None)
    _fail_on_status(ctx, "scoring")
    if results.metric_file(ctx.pred_root, ctx.model.vlmeval_model, ctx.task.vlmeval_data, ctx.metric_suffix) is None:
        broken = results.unreadable_prediction(ctx.pred_root, ctx.model.vlmeval_model, ctx.task.vlmeval_data)
        if broken:
            raise VLMEvalFailure(f"scoring {ctx.model.vlmeval_model} x {ctx.task.vlmeval_data} failed: {broken}")
        entry = results.dataset_entry(results.load_status(ctx.pred_root), ctx.task.vlmeval_data)
        raise VLMEvalFailure(
            f"scoring wrote no {ctx.metric_suffix} file for {ctx.model.vlmeval_model} x {ctx.task.vlmeval_data}"
            f" (status.json: {entry.get('skip_reason') or entry.get('status') or 'no entry'}); check the "
            "task's primary_metric_suffix, the judge settings and worker_stderr.log"
        )


def ingest_step(engine: Engine | None, run_id: int) -> dict[str, Any]:
    ctx = load_context(engine, run_id)
    got = results.collect_metrics(
        ctx.pred_root,
        model=ctx.model.vlmeval_model,
        data=ctx.task.vlmeval_data,
        suffix=ctx.metric_suffix,
        key=ctx.metric_key,
    )
    from vlmevals.results.samples import ingest_for_run  # numpy/scipy only where samples are ingested

    sample_columns = ingest_for_run(
        engine, run_id, ctx.pred_root, ctx.model.vlmeval_model, ctx.task.vlmeval_data, got.metrics
    )
    if not runs.mark_completed(
        engine, run_id, primary_metric=got.primary_metric, metrics=got.metrics, extra=sample_columns
    ):
        log.warning("eval run %s was no longer active (cancelled?); metrics not recorded", run_id)
        return {"eval_run_id": run_id, "primary_metric": got.primary_metric, "metric_file": str(got.metric_file)}
    from vlmevals.results.regression import check_run  # nightly runs: compare with the pair's previous completed run

    try:
        verdict = check_run(engine, run_id)
    except Exception:  # the result is stored; a failed comparison must not fail (and retry) the ingest
        log.exception("regression check of eval run %s failed", run_id)
        verdict = None
    return {
        "eval_run_id": run_id,
        "primary_metric": got.primary_metric,
        "metric_file": str(got.metric_file),
        "regression": verdict.regression if verdict else None,
    }


def finalize_step(engine: Engine | None, run_id: int | None, dag_run_id: str) -> str:
    """Teardown: no run may stay queued or running once its DAG run is over."""
    if run_id is None:
        return "no eval run was recorded"
    failed = runs.mark_failed(
        engine,
        run_id,
        f"the eval_run DAG run {dag_run_id} ended before ingest_metrics recorded a result; see the Airflow task logs",
    )
    return "marked failed" if failed else "already final"


def record_task_failure(
    engine: Engine | None,
    run_id: int | None,
    task_id: str,
    error: BaseException | str | None,
) -> None:
    if run_id is None:
        return
    runs.mark_failed(engine, run_id, f"{task_id}: {error or 'failed (see the task log)'}")
