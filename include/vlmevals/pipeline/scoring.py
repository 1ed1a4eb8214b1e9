"""The `scoring` step: VLMEvalKit's evaluation of the predictions, its metric file checked before ingest.

An LLM judge is reached through the judge gateway (vlmevals.pipeline.judging), which counts and caches its
requests. A re-judged run (source_run_id) comes here straight from `queue`: no inference step marked it running.
"""

from __future__ import annotations

import logging

from sqlalchemy import Engine

from vlmevals.core.constants import WORKER_STDERR_LOG
from vlmevals.core.errors import VLMEvalFailure
from vlmevals.core.settings import Settings, get_settings
from vlmevals.core.vocabulary import RunStatus
from vlmevals.db.engine import session_scope
from vlmevals.pipeline.context import RunContext, fail_on_status, load_context, run_vlmeval
from vlmevals.pipeline.inference import inference_mode
from vlmevals.pipeline.ingest import scored_in_process
from vlmevals.pipeline.judging import judging
from vlmevals.runs import lifecycle as runs
from vlmevals.vlmevalkit import outputs

log = logging.getLogger(__name__)


def _no_metric_file(ctx: RunContext) -> VLMEvalFailure:
    model, data = ctx.model.vlmeval_model, ctx.task.vlmeval_data
    broken = outputs.unreadable_prediction(ctx.pred_root, model, data)
    if broken:
        return VLMEvalFailure(f"scoring {model} x {data} failed: {broken}")
    entry = outputs.dataset_entry(outputs.load_status(ctx.pred_root), data)
    return VLMEvalFailure(
        f"scoring wrote no {ctx.metric_suffix} file for {model} x {data}"
        f" (status.json: {entry.get('skip_reason') or entry.get('status') or 'no entry'}); check the "
        f"task's primary_metric_suffix, the judge settings and {WORKER_STDERR_LOG}"
    )


def _require_predictions(ctx: RunContext) -> None:
    """Inference may end without predictions yet scoring still runs: its task marked success in Airflow mid-way.
    VLMEvalKit would only say "No infer result found"; name the file instead."""
    model, data = ctx.model.vlmeval_model, ctx.task.vlmeval_data
    if outputs.prediction_file(ctx.pred_root, model, data) is None:
        raise VLMEvalFailure(
            f"no predictions to score: {ctx.pred_root / f'{model}_{data}.xlsx'} does not exist, so inference ended "
            "before it finished (was its task marked success in Airflow?); trigger the evaluation again"
        )


def scoring_step(engine: Engine, run_id: int, try_number: int = 1, settings: Settings | None = None) -> None:
    settings = settings or get_settings()
    ctx = load_context(engine, run_id)
    if ctx.status == RunStatus.QUEUED:  # a re-judge: `queue` branched here, past inference
        with session_scope(engine) as s:
            runs.mark_running(s, run_id, try_number, step="scoring (re-judge)")
    model, data = ctx.model.vlmeval_model, ctx.task.vlmeval_data
    scored = scored_in_process(ctx)
    if inference_mode(ctx, settings) == "all" and scored is not None:
        log.info("already scored in the inference process: %s", scored.name)
    else:
        _require_predictions(ctx)
        with judging(engine, run_id, ctx.options.judge, settings) as route:
            run_vlmeval(engine, ctx, "eval", settings, try_number, None, judge_route=route)
    fail_on_status(ctx, "scoring")
    if outputs.metric_file(ctx.pred_root, model, data, ctx.metric_suffix) is None:
        raise _no_metric_file(ctx)
