"""ORM rows -> API representations, with links into this API and the Airflow UI."""

from __future__ import annotations

import os
from urllib.parse import quote

from fastapi import Request, Response
from pydantic import BaseModel

from vlmevals.api import resources as s
from vlmevals.catalogue.schemas.checkpoints import checkpoint_ref
from vlmevals.core.constants import (
    API_PREFIX,
    EVAL_RUN_DAG_ID,
    SCORING_TASK_ID,
    SERVED_INFERENCE_TASK_ID,
    WORKER_STDERR_LOG,
)
from vlmevals.core.vocabulary import RunStatus
from vlmevals.db.models import EvalRun, Task
from vlmevals.gpu.slots import inference_task_id, slots_for
from vlmevals.results.leaderboard import Leaderboard, category_scores
from vlmevals.runs import judge_usage
from vlmevals.runs import lifecycle as run_rows


def api_root(request: Request) -> str:
    """Where this API is mounted, e.g. `/api/evals` (or `/airflow/api/evals` behind a path prefix)."""
    return request.scope.get("root_path", "").rstrip("/") or API_PREFIX


def site_root(request: Request) -> str:
    """Airflow's root path, for links into its UI."""
    return api_root(request).removesuffix(API_PREFIX)


def json_response(body: BaseModel) -> Response:
    """A response model already validated, serialised once as JSON bytes: returned as a Response, FastAPI does
    not validate and serialise it a second time (the route still declares `response_model` for OpenAPI)."""
    return Response(body.__pydantic_serializer__.to_json(body), media_type="application/json")


def _has_artifact(run: EvalRun, name: str) -> bool:
    """Whether the run's artifacts folder holds `name` (a backfilled folder has no worker logs); os.path, one
    stat call per row of a listing, not pathlib's objects."""
    return os.path.isfile(os.path.join(run.artifacts_dir or run_rows.artifacts_dir_for(run.id), name))


def links(request: Request, run: EvalRun) -> s.RunLinks:
    """Where to look next; a link to a file only when the file exists, so every link can be followed."""
    api, site = api_root(request), site_root(request)
    out = s.RunLinks(self=f"{api}/runs/{run.id}", artifacts=f"{api}/runs/{run.id}/artifacts")
    if _has_artifact(run, WORKER_STDERR_LOG):
        out.worker_log = f"{api}/runs/{run.id}/artifacts/{WORKER_STDERR_LOG}"
    if run.dag_run_id:
        dag, dr = quote(run.dag_id or EVAL_RUN_DAG_ID, safe=""), quote(run.dag_run_id, safe="")
        if run.source_run_id is not None:  # a re-judge ran no inference: its VLMEvalKit log is the scoring task's
            ti = SCORING_TASK_ID
        elif run.server_id is not None:  # a served run's VLMEvalKit ran in inference_served (the client side)
            ti = SERVED_INFERENCE_TASK_ID
        else:
            try:
                ti = inference_task_id(slots_for(run.model.gpus))
            except ValueError:
                ti = "inference"
        out.airflow_run = f"{site}/dags/{dag}/runs/{dr}"
        out.airflow_logs = f"{site}/dags/{dag}/runs/{dr}/tasks/{ti}"
        out.airflow_api = f"{site}/api/v2/dags/{dag}/dagRuns/{dr}"
    return out


def rejudged_label(run: EvalRun) -> str | None:
    """What the per-run view says of a re-judge."""
    if run.source_run_id is None:
        return None
    judge = ((run.fingerprint or {}).get("judge") or {}).get("name") or (run.options or {}).get("judge")
    return f"re-judged from #{run.source_run_id} with {judge or 'the default judge'}"


def run_summary(request: Request, run: EvalRun) -> s.RunSummary:
    total = run.progress_total
    return s.RunSummary(
        id=run.id,
        task_name=run.task.name,
        model_name=run.model.name,
        model_display_name=run.model.display_name,
        checkpoint=checkpoint_ref(run.checkpoint),
        status=RunStatus(run.status),
        dag_id=run.dag_id,
        dag_run_id=run.dag_run_id,
        triggered_by=run.triggered_by,
        triggered_by_user=run.triggered_by_user,
        options=run.options or {},
        limited=run.sample_limit is not None,
        sample_limit=run.sample_limit,
        created_at=run.created_at,
        started_at=run.started_at,
        finished_at=run.finished_at,
        progress_done=run.progress_done,
        progress_total=total,
        progress=(run.progress_done / total) if total else None,
        primary_metric=run.primary_metric,
        metric_scale=run.task.metric_scale,
        ci_low=run.ci_low,
        ci_high=run.ci_high,
        samples_total=run.samples_total,
        samples_failed=run.samples_failed,
        samples_judge_failed=run.samples_judge_failed,
        source_run_id=run.source_run_id,
        rejudged=rejudged_label(run),
        regression=run.regression,
        baseline_run_id=run.baseline_run_id,
        attempts=run.attempts,
        error=run.error,
        links=links(request, run),
    )


def run_public(request: Request, run: EvalRun) -> s.RunPublic:
    return s.RunPublic(
        **run_summary(request, run).model_dump(),
        metrics=run.metrics or {},
        categories=category_scores(run.metrics),
        vlmeval_version=run.vlmeval_version,
        fingerprint=run.fingerprint or {},
        fingerprint_hash=run.fingerprint_hash,
        judge=judge_usage.of(run.fingerprint),
        regression_detail=run.regression_detail,
        artifacts_dir=run.artifacts_dir,
        source_path=run.source_path,
        events=[s.RunEvent.model_validate(e) for e in run.events],
    )


def task_header(lb_task: Task) -> s.LeaderboardTask:
    return s.LeaderboardTask(
        name=lb_task.name,
        display_name=lb_task.display_name,
        primary_metric_key=lb_task.primary_metric_key,
        higher_is_better=lb_task.higher_is_better,
        metric_scale=lb_task.metric_scale,
    )


def leaderboard(request: Request, lb: Leaderboard) -> s.LeaderboardResponse:
    from vlmevals.results.drift import drift_marks

    drift = drift_marks(lb.compared)  # the majority is over all rows
    rows = [
        s.LeaderboardRow(
            rank=e.rank,
            model_name=e.model.name,
            model_display_name=e.model.display_name,
            params_b=e.model.params_b,
            score=float(e.run.primary_metric or 0.0),
            ci_low=e.run.ci_low,
            ci_high=e.run.ci_high,
            samples_total=e.run.samples_total,
            samples_failed=e.run.samples_failed,
            regression=e.run.regression,
            run_id=e.run.id,
            dag_run_id=e.run.dag_run_id,
            finished_at=e.run.finished_at,
            categories=e.categories,
            links=links(request, e.run),
            limited=e.run.sample_limit is not None,
            sample_limit=e.run.sample_limit,
            drift=drift[e.run.id],
            judge_requests=(e.judge or {}).get("requests"),
            judge_cached=(e.judge or {}).get("cached"),
            judge_cost_usd=(e.judge or {}).get("cost_usd"),
        )
        for e in lb.entries  # already the page asked for
    ]
    unranked = [
        s.UnrankedRow(
            model_name=u.model.name,
            model_display_name=u.model.display_name,
            params_b=u.model.params_b,
            latest_run_id=u.latest_run_id,
            latest_status=RunStatus(u.latest_status),
        )
        for u in lb.unranked
    ]
    return s.LeaderboardResponse(
        task=task_header(lb.task),
        pick=lb.pick,
        include_limited=lb.include_limited,
        data=rows,
        count=lb.count,
        unranked=unranked,
    )
