"""The `inference` step: VLMEvalKit's inference on the model's leased GPUs, resuming from earlier attempts."""

from __future__ import annotations

import logging
import shutil
from contextlib import nullcontext
from dataclasses import replace
from typing import Any

from sqlalchemy import Engine

from vlmevals.core.constants import WORKER_STDERR_LOG
from vlmevals.core.errors import InvalidRequestError, VLMEvalFailure
from vlmevals.core.settings import Settings, get_settings
from vlmevals.db.engine import session_scope
from vlmevals.gpu import leases as gpus
from vlmevals.pipeline import serve
from vlmevals.pipeline.context import RunContext, fail_on_status, load_context, progress_total, run_vlmeval
from vlmevals.pipeline.ingest import store_if_scored
from vlmevals.pipeline.judging import judging
from vlmevals.results import fingerprint
from vlmevals.runs import concurrency
from vlmevals.runs import lifecycle as runs
from vlmevals.vlmevalkit import hub, outputs
from vlmevals.vlmevalkit.command import effective_nproc
from vlmevals.vlmevalkit.runner import AbortRun

log = logging.getLogger(__name__)


def inference_mode(ctx: RunContext, settings: Settings) -> str:
    """`all` when scoring is offline exact matching: it takes milliseconds, so the same VLMEvalKit process
    scores (saving a second ~7 s import and model-free start-up); `infer` when an LLM judge scores, so the
    GPU slot is released before the (slow, remote) judging starts in `scoring`."""
    if ctx.options.limit:  # VLMEvalKit's --mode eval checks completeness against the whole dataset
        return "all"
    return "all" if (ctx.options.judge or settings.judge) == "exact_matching" else "infer"


def record_fingerprint(
    engine: Engine,
    ctx: RunContext,
    settings: Settings,
    visible_devices: str | None = None,
    concurrency: dict[str, Any] | None = None,
    serving: dict[str, Any] | None = None,
) -> None:
    """Store what determines this run's result, at inference time (see vlmevals.results.fingerprint); a served
    model's request share goes in too, outside the hashed parts."""
    fp, digest = fingerprint.compute(
        task=ctx.task,
        model=ctx.model,
        settings=settings,
        judge=ctx.options.judge,
        limit=ctx.options.limit,
        dataset_rows=progress_total(engine, ctx.run_id),
        visible_devices=visible_devices,
        hub_online=False,  # the commit the queue step downloaded, from the local cache
        checkpoint=ctx.checkpoint,
        serving=serving,
    )
    if concurrency is not None:
        fp["concurrency"] = concurrency
    with session_scope(engine) as s:
        runs.set_fingerprint(s, ctx.run_id, fp, digest)


def claim_endpoint(
    engine: Engine, ctx: RunContext, settings: Settings, cap: int | None = None
) -> tuple[RunContext, dict[str, Any] | None]:
    """A served model's share of its endpoint's request cap (waits while the endpoint is saturated)."""
    if not ctx.model.endpoint_base_url:
        return ctx, None
    wanted = effective_nproc(ctx.model, settings)
    part = concurrency.claim(engine, ctx.run_id, ctx.model.endpoint_base_url, wanted, settings, cap=cap)
    return replace(ctx, model=replace(ctx.model, api_nproc=part["api_nproc"])), part


def _prepare(ctx: RunContext, try_number: int) -> int:
    """Set aside an earlier attempt's verdict, drop partial results unless reused; samples already answered."""
    ctx.pred_root.mkdir(parents=True, exist_ok=True)
    status_file = ctx.pred_root / outputs.STATUS_FILE
    if status_file.exists():  # an earlier attempt's verdict must not leak into this one
        shutil.move(status_file, ctx.pred_root / f"status.before-attempt{try_number}.json")
    if not ctx.options.reuse and try_number == 1:
        for p in ctx.pred_root.glob(f"*_{ctx.task.vlmeval_data}.pkl"):
            p.unlink()
    resumed = outputs.count_partial(ctx.pred_root, ctx.model.vlmeval_model, ctx.task.vlmeval_data)
    if resumed:
        log.info("resuming: %s samples already answered by earlier attempts", resumed)
    return resumed


def inference_step(
    engine: Engine, run_id: int, try_number: int = 1, settings: Settings | None = None
) -> dict[str, Any]:
    settings = settings or get_settings()
    ctx = load_context(engine, run_id)
    with session_scope(engine) as s:
        running = runs.mark_running(s, run_id, try_number)
    if not running:
        raise InvalidRequestError(f"eval run {run_id} is {ctx.status}; not running inference")
    resumed = _prepare(ctx, try_number)
    total = progress_total(engine, run_id)
    # the model's GPUs, exclusively, for as long as VLMEvalKit runs (CPU fallback on GPU-less workers)
    holder = f"eval run {run_id} inference try {try_number}"
    offline, hub_env = hub.offline_model(ctx.model, settings)  # the queue step fetched Hub weights: no download now
    with gpus.leased(engine, ctx.model.gpus, holder=holder, run_id=run_id) as lease:
        ctx, share = claim_endpoint(engine, replace(ctx, model=lease.adapt(ctx.model)), settings)
        record_fingerprint(engine, ctx, settings, visible_devices=lease.cuda_visible_devices, concurrency=share)
        mode = inference_mode(ctx, settings)
        offline_ctx = replace(ctx, model=replace(ctx.model, model_spec=offline.model_spec))
        env = {**lease.env(), **hub_env}
        with judging(engine, run_id, ctx.options.judge, settings) if mode == "all" else nullcontext() as route:
            run_vlmeval(
                engine, offline_ctx, mode, settings, try_number, total, extra_env=env, on_tick=lease.heartbeat,
                judge_route=route,
            )  # fmt: skip
    return _finish(engine, ctx, mode, total, resumed)


def _finish(engine: Engine, ctx: RunContext, mode: str, total: int | None, resumed: int) -> dict[str, Any]:
    """After VLMEvalKit's inference: its verdict, the prediction file, progress, and the result when it scored."""
    run_id = ctx.run_id
    fail_on_status(ctx, "inference")
    pred = outputs.prediction_file(ctx.pred_root, ctx.model.vlmeval_model, ctx.task.vlmeval_data)
    if pred is None:
        raise VLMEvalFailure(
            f"VLMEvalKit wrote no prediction file for {ctx.model.vlmeval_model} x "
            f"{ctx.task.vlmeval_data} in {ctx.pred_root}; see {WORKER_STDERR_LOG}"
        )
    if total is not None:
        with session_scope(engine) as s:
            runs.set_progress(s, run_id, total, total)
    stored = mode == "all" and store_if_scored(engine, load_context(engine, run_id))
    return {"predictions": str(pred), "resumed_samples": resumed, "stored": stored}


def served_inference_step(
    engine: Engine, run_id: int, try_number: int = 1, settings: Settings | None = None
) -> dict[str, Any]:
    """Inference of a served model's run against its managed server: no GPU of its own (the server holds them),
    many concurrent requests (`EVALS_SERVE_API_NPROC`, capped per server), and the run fails at once, naming the
    server's reason, if the server stops or fails while it runs. Answers lost to an engine restart are asked
    again by the task's retry (VLMEvalKit's --reuse drops failed answers)."""
    settings = settings or get_settings()
    ctx = load_context(engine, run_id)
    with session_scope(engine) as s:
        running = runs.mark_running(s, run_id, try_number)
    if not running:
        raise InvalidRequestError(f"eval run {run_id} is {ctx.status}; not running inference")
    server = serve.await_server(engine, run_id, settings)
    resumed = _prepare(ctx, try_number)
    total = progress_total(engine, run_id)
    served = replace(ctx, model=serve.served_model(ctx.model, server, settings))
    served, share = claim_endpoint(engine, served, settings, cap=settings.serve_max_concurrency)
    # the weights as the model's (path, Hub commit, checkpoint), the engine that ran them beside
    record_fingerprint(engine, ctx, settings, concurrency=share, serving=server.fingerprint)
    ctx = served
    mode = inference_mode(ctx, settings)
    watch = serve.server_watch(engine, server.id)
    try:
        with judging(engine, run_id, ctx.options.judge, settings) if mode == "all" else nullcontext() as route:
            run_vlmeval(engine, ctx, mode, settings, try_number, total, on_tick=watch, judge_route=route)
    except AbortRun as err:
        raise VLMEvalFailure(f"inference stopped: {err}") from err
    failed = outputs.count_failed_answers(ctx.pred_root, ctx.model.vlmeval_model, ctx.task.vlmeval_data)
    if failed:
        raise VLMEvalFailure(
            f"{failed} answers from model server {server.id} ({server.base_url}) failed (the engine restarted or "
            f"refused them); the retry asks them again. Engine log: {server.log_path}",
            retryable=True,
        )
    return _finish(engine, ctx, mode, total, resumed)
