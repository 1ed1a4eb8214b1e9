"""The `ingest_metrics` step, and storing a scored run: every metric, the per-sample results, the run completed.

`ingest_metrics` does it, and so does `inference` as soon as VLMEvalKit has scored in its own process (offline
exact matching): the result is on the leaderboard without waiting for two more task starts (scoring's and
ingest_metrics'), which then find it stored. One function, so both paths store exactly the same thing.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from vlmevals.core.errors import VLMEvalFailure
from vlmevals.core.vocabulary import RunStatus
from vlmevals.db.engine import session_scope
from vlmevals.pipeline.context import RunContext, load_context
from vlmevals.pipeline.judging import judge_failure
from vlmevals.runs import judge_usage
from vlmevals.runs import lifecycle as runs
from vlmevals.vlmevalkit import outputs

log = logging.getLogger(__name__)


def scored_in_process(ctx: RunContext) -> Path | None:
    """The metric file, when the VLMEvalKit process that inferred also scored (its status.json has metrics)."""
    entry = outputs.dataset_entry(outputs.load_status(ctx.pred_root), ctx.task.vlmeval_data)
    if entry.get("metrics") is None:
        return None
    return outputs.metric_file(ctx.pred_root, ctx.model.vlmeval_model, ctx.task.vlmeval_data, ctx.metric_suffix)


def store_result(engine: Engine, ctx: RunContext) -> tuple[dict[str, Any], bool]:
    """Collect, store and complete, with the regression verdict in the same commit; returns (what was stored,
    whether the run was still active to take it)."""
    got = outputs.collect_metrics(
        ctx.pred_root,
        model=ctx.model.vlmeval_model,
        data=ctx.task.vlmeval_data,
        suffix=ctx.metric_suffix,
        key=ctx.metric_key,
    )
    from vlmevals.results.regression import check_in_session  # numpy/scipy only where results are stored
    from vlmevals.results.samples import ingest_for_run

    with session_scope(engine) as s:  # the samples first (a retry replaces them), as before the completion
        sample_columns = ingest_for_run(
            s, ctx.run_id, ctx.pred_root, ctx.model.vlmeval_model, ctx.task.vlmeval_data, got.metrics
        )
        usage = judge_usage.of(runs.get_run(s, ctx.run_id).fingerprint)
    judged_none = sample_columns.get("samples_judge_failed")
    if judged_none and judged_none == sample_columns.get("samples_total"):
        raise VLMEvalFailure(
            f"the judge failed on every sample ({judged_none}), so there is no score (not a score of 0): "
            f"{judge_failure(usage)}; check EVALS_JUDGE_BASE_URL and the judge server, then re-judge this run"
        )
    verdicts = []
    with session_scope(engine) as s:  # the completion and its verdict: one commit
        stored = runs.mark_completed(
            s,
            ctx.run_id,
            primary_metric=got.primary_metric,
            metrics=got.metrics,
            extra=sample_columns,
            then=lambda t: verdicts.append(check_in_session(t, ctx.run_id)),
        )
    verdict = verdicts[0] if verdicts else None
    done = {
        "eval_run_id": ctx.run_id,
        "primary_metric": got.primary_metric,
        "metric_file": str(got.metric_file),
        "regression": verdict.regression if verdict else None,
    }
    return done, stored


def store_if_scored(engine: Engine, ctx: RunContext) -> bool:
    """Called by `inference` after VLMEvalKit exits: never fails the task (that would rerun inference); whatever
    went wrong, `scoring` and `ingest_metrics` meet it again and fail with their readable error."""
    if scored_in_process(ctx) is None:
        return False
    try:
        _, stored = store_result(engine, ctx)
    except Exception:
        log.warning("result of eval run %s not stored yet; ingest_metrics will", ctx.run_id, exc_info=True)
        return False
    log.info("eval run %s stored (scored in the inference process)", ctx.run_id)
    return stored


def ingest_step(engine: Engine, run_id: int) -> dict[str, Any]:
    """Stores the result unless `inference` did (then it reports the stored one; its regression check again
    only if that one gave no verdict, e.g. it failed)."""
    ctx = load_context(engine, run_id)
    if ctx.status != RunStatus.COMPLETED:
        done, stored = store_result(engine, ctx)
        if not stored:
            log.warning("eval run %s was no longer active (cancelled?); metrics not recorded", run_id)
        return done
    with session_scope(engine) as s:
        run = runs.get_run(s, run_id)
        primary = run.primary_metric
        regression = run.regression if run.regression_detail is not None else None  # None: no verdict stored
    scored = scored_in_process(ctx)
    if regression is None:
        from vlmevals.results.regression import check_run

        try:
            with session_scope(engine) as s:
                verdict = check_run(s, run_id)
            regression = verdict.regression if verdict else None
        except Exception:  # the result is stored; a failed comparison must not fail (and retry) the ingest
            log.exception("regression check of eval run %s failed", run_id)
    return {
        "eval_run_id": run_id,
        "primary_metric": primary,
        "metric_file": str(scored) if scored else None,
        "regression": regression,
    }
