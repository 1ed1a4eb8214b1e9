"""What every step of one evaluation shares: a plain copy of the run, and running VLMEvalKit for it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from vlmevals.catalogue.specs import checkpoint_identity, model_spec, task_spec
from vlmevals.core.errors import VLMEvalFailure
from vlmevals.core.settings import Settings
from vlmevals.db.engine import session_scope
from vlmevals.pipeline.judging import JudgeRoute
from vlmevals.runs import lifecycle as runs
from vlmevals.runs.schemas import RunOptions
from vlmevals.vlmevalkit import outputs
from vlmevals.vlmevalkit.command import ModelSpec, TaskSpec, build_invocation, write_config
from vlmevals.vlmevalkit.runner import run_streaming

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
    model: ModelSpec  # at the run's checkpoint, if it has one
    model_name: str
    checkpoint: dict[str, Any] | None = None  # step/label and weights of the run's checkpoint

    @property
    def pred_root(self) -> Path:
        # ms-vlmeval writes flat files into {work_dir}/{model}/
        return self.artifacts / self.model.vlmeval_model


def load_context(engine: Engine, run_id: int) -> RunContext:
    with session_scope(engine) as s:
        r = runs.get_run(s, run_id)
        options = RunOptions.model_validate(r.options or {})
        model = model_spec(r.model, r.checkpoint)
        return RunContext(
            run_id=r.id,
            status=r.status,
            artifacts=Path(r.artifacts_dir or runs.artifacts_dir_for(r.id)),
            options=options,
            task=task_spec(r.task),
            task_name=r.task.name,
            metric_suffix=r.task.primary_metric_suffix,
            metric_key=r.task.primary_metric_key,
            model=replace(model, api_nproc=options.api_nproc or model.api_nproc),  # a run option wins
            model_name=r.model.name,
            checkpoint=checkpoint_identity(r.checkpoint),
        )


def progress_total(engine: Engine, run_id: int) -> int | None:
    with session_scope(engine) as s:
        return runs.get_run(s, run_id).progress_total


def fail_on_status(ctx: RunContext, phase: str) -> None:
    """VLMEvalKit exits 0 on a failed pair: its status.json says so."""
    entry = outputs.dataset_entry(outputs.load_status(ctx.pred_root), ctx.task.vlmeval_data)
    err = outputs.entry_error(entry)
    if err:
        raise VLMEvalFailure(
            f"VLMEvalKit {phase} failed for {ctx.model.vlmeval_model} x {ctx.task.vlmeval_data}: {err}"
        )


def run_vlmeval(
    engine: Engine,
    ctx: RunContext,
    mode: str,
    settings: Settings,
    try_number: int,
    total: int | None,
    extra_env: dict[str, str] | None = None,
    on_tick: Callable[[], None] | None = None,
    judge_route: JudgeRoute | None = None,
) -> None:
    """One VLMEvalKit process for the run (`infer`, `eval` or `all`), reporting progress while it runs; its
    judge requests go to `judge_route` (the judge gateway) when given."""
    opts = ctx.options
    inv = build_invocation(
        settings=settings,
        task=ctx.task,
        model=ctx.model,
        work_dir=ctx.artifacts,
        mode=mode,
        judge=opts.judge,
        reuse=True,
        limit=opts.limit,
        api_retry=opts.api_retry,
        judge_gateway=judge_route.base_url if judge_route else None,
        judge_api_nproc=judge_route.api_nproc if judge_route else None,
    )
    write_config(inv, ctx.artifacts / "vlmeval_config.json")
    log.info("running: %s", inv.redacted())

    def tick() -> None:
        if on_tick is not None:  # e.g. the GPU lease's heartbeat
            on_tick()
        if mode in ("infer", "all"):
            done = outputs.count_partial(ctx.pred_root, ctx.model.vlmeval_model, ctx.task.vlmeval_data)
            with session_scope(engine) as s:
                runs.set_progress(s, ctx.run_id, done, total)

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
