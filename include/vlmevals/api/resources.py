"""The resources the evals API computes from eval runs (a run, a leaderboard, a score history, an artifact
file), each defined once. Catalogue resources (tasks, models, enrolments) are in catalogue/schemas/; the
envelopes around them (lists, conflicts, cancellations) in api/schemas/envelopes.py."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator

from vlmevals.catalogue.fields import Slug, VlmevalName
from vlmevals.catalogue.schemas.checkpoints import CheckpointRef
from vlmevals.core.vocabulary import RunStatus, TriggeredBy
from vlmevals.runs.schemas import RunOptions


class RunLinks(BaseModel):
    self: str = Field(description="this run in the evals API")
    artifacts: str = Field(description="the run's artifact files")
    airflow_run: str | None = Field(default=None, description="the DAG run in the Airflow UI")
    airflow_logs: str | None = Field(
        default=None, description="the inference task's log in the Airflow UI (a re-judge's: its scoring task's)"
    )
    airflow_api: str | None = Field(default=None, description="the DAG run in Airflow's REST API")
    worker_log: str | None = Field(
        default=None, description="VLMEvalKit stderr (worker_stderr.log); absent until written and in backfilled runs"
    )


class RunSummary(BaseModel):
    """A run as listed: status, progress, score and where to look; metrics are in the single-run view."""

    id: int
    task_name: str
    model_name: str
    model_display_name: str
    checkpoint: CheckpointRef | None = Field(description="the checkpoint evaluated; null: the model as registered")
    status: RunStatus
    dag_id: str | None
    dag_run_id: str | None
    triggered_by: TriggeredBy
    triggered_by_user: str | None
    options: dict[str, Any]
    limited: bool = Field(description="evaluated a subset (option `limit`): left out of boards and baselines")
    sample_limit: int | None = Field(
        description="the run option `limit`: only the first N samples were evaluated; null: the full dataset"
    )
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    progress_done: int
    progress_total: int | None
    progress: float | None = Field(description="progress_done / progress_total (0..1) when the total is known")
    primary_metric: float | None
    metric_scale: float = Field(description="full scale of the task's metric (1 or 100)")
    ci_low: float | None
    ci_high: float | None
    samples_total: int | None
    samples_failed: int | None
    samples_judge_failed: int | None = Field(
        default=None, description="of samples_failed: those the judge failed on (not the model's fault)"
    )
    source_run_id: int | None = Field(default=None, description="a re-judge: the run whose predictions it scored")
    rejudged: str | None = Field(default=None, description='"re-judged from #N with JUDGE" for a re-judge')
    regression: bool
    baseline_run_id: int | None
    attempts: int
    error: str | None
    links: RunLinks


class RunEvent(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    status: str
    message: str | None
    at: dt.datetime


class RunPublic(RunSummary):
    """One run in full: all metrics, reproducibility fingerprint, regression detail and its history."""

    metrics: dict[str, Any]
    categories: dict[str, float] = Field(description="per-category scores from the metric table")
    vlmeval_version: str | None
    fingerprint: dict[str, Any]
    fingerprint_hash: str | None
    judge: dict[str, Any] | None = Field(
        default=None,
        description="what judging cost through the judge gateway: requests, cached, tokens, failures, latency, cost",
    )
    regression_detail: dict[str, Any] | None
    artifacts_dir: str | None
    source_path: str | None
    events: list[RunEvent]


class TriggerRequest(BaseModel):
    """JSON kinds as documented: `0` is not `false` and `"5"` is not `5` (12.0 is the integer 12), options too."""

    model_config = ConfigDict(extra="forbid")

    model_name: Slug = Field(description="catalogue name of the model to evaluate")
    force: StrictBool = Field(default=False, description="start a new run even if one of this task x model is active")
    options: RunOptions = Field(default_factory=RunOptions, description="judge, reuse, limit, api_nproc")

    @field_validator("options", mode="before")
    @classmethod
    def _json_kinds(cls, v: Any) -> Any:
        if not isinstance(v, dict):
            return v
        got = RunOptions.model_validate(v)
        for key, raw in v.items():
            new = getattr(got, key)
            if isinstance(raw, bool) != isinstance(new, bool) or isinstance(raw, str) != isinstance(new, str):
                raise ValueError(f"options.{key}: {raw!r} has the wrong JSON type (see the schema of RunOptions)")
        return got


class RejudgeRequest(BaseModel):
    """Re-judge a completed run's predictions with another judge (no inference)."""

    model_config = ConfigDict(extra="forbid")

    judge: VlmevalName | None = Field(default=None, description="VLMEvalKit --judge; default EVALS_JUDGE")
    force: StrictBool = Field(default=False, description="judge again even with the judge that scored the source")


class LeaderboardRow(BaseModel):
    rank: int = Field(description="1 = best; ties share a rank")
    model_name: str
    model_display_name: str
    params_b: float | None
    score: float = Field(description="primary metric on the task's scale")
    ci_low: float | None
    ci_high: float | None
    samples_total: int | None
    samples_failed: int | None
    regression: bool
    run_id: int
    dag_run_id: str | None
    finished_at: dt.datetime | None
    categories: dict[str, float]
    links: RunLinks
    limited: bool = Field(description="a run on a subset (only on a board asked with include_limited=true)")
    sample_limit: int | None = Field(
        description="the run option `limit`: only the first N samples were evaluated; null: the full dataset"
    )
    drift: list[str] = Field(
        default_factory=list,
        description="why this row is not comparable with the table's "
        "majority (dataset md5, judge or VLMEvalKit version differ); empty: comparable",
    )
    judge_requests: int | None = Field(
        default=None, description="judge requests of the run through the gateway; null: no LLM judge counted"
    )
    judge_cached: int | None = Field(default=None, description="of judge_requests: answered from the judge cache")
    judge_cost_usd: float | None = Field(
        default=None, description="what the judge's tokens cost (a price in seed.yaml or EVALS_JUDGE_PRICES)"
    )


class UnrankedRow(BaseModel):
    model_name: str
    model_display_name: str
    params_b: float | None
    latest_run_id: int
    latest_status: RunStatus


class LeaderboardTask(BaseModel):
    name: str
    display_name: str
    primary_metric_key: str
    higher_is_better: bool
    metric_scale: float


class LeaderboardResponse(BaseModel):
    task: LeaderboardTask
    pick: Literal["best", "latest"]
    include_limited: bool = Field(description="runs on a subset (option `limit`) were considered too")
    data: list[LeaderboardRow]
    count: int
    unranked: list[UnrankedRow] = Field(description="models with runs on this task but no completed score")


class HistoryPointOut(BaseModel):
    run_id: int
    finished_at: dt.datetime
    score: float
    limited: bool = Field(description="a run on a subset (only in a history asked with include_limited=true)")
    sample_limit: int | None


class HistorySeriesOut(BaseModel):
    model_name: str
    model_display_name: str
    params_b: float | None
    points: list[HistoryPointOut]


class HistoryResponse(BaseModel):
    task: LeaderboardTask
    include_limited: bool
    data: list[HistorySeriesOut]
    count: int


class ArtifactFile(BaseModel):
    name: str = Field(description="path relative to the run's artifacts folder")
    size: int
    modified: dt.datetime
