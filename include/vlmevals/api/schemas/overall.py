"""API representations of suite triggers and the overall board (beside the envelopes in api/schemas/envelopes.py)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from vlmevals.catalogue.schemas.checkpoints import CheckpointPublic


class SuiteRunStarted(BaseModel):
    task: str
    run_id: int
    dag_run_id: str
    link: str


class SuiteRunActive(BaseModel):
    task: str
    run_id: int | None
    status: str | None
    link: str | None


class SuiteRunFailed(BaseModel):
    task: str
    error: str


class SuiteTriggerResponse(BaseModel):
    """One entry per task of the suite: started now, already active (the per-pair rule), or refused."""

    suite: str
    model_name: str
    started: list[SuiteRunStarted]
    already_active: list[SuiteRunActive]
    failed: list[SuiteRunFailed]


class CheckpointTriggerResponse(BaseModel):
    """A registered checkpoint and its suite's runs, task by task (the suite trigger's lists)."""

    checkpoint: CheckpointPublic
    suite: str
    started: list[SuiteRunStarted]
    already_active: list[SuiteRunActive]
    failed: list[SuiteRunFailed]


class OverallColumn(BaseModel):
    task: str
    display_name: str
    weight: float
    higher_is_better: bool
    metric_scale: float
    leaderboard: str = Field(description="this task's own board")


class OverallCell(BaseModel):
    score: float = Field(description="the run's primary metric on the task's own scale")
    value: float = Field(description="normalised to 0-100, higher is better")
    task_rank: int | None = Field(description="competition rank on this task among the ranked models")
    run_id: int
    link: str
    limited: bool = Field(description="a run on a subset (only on a board asked with include_limited=true)")
    sample_limit: int | None = Field(description="the run's option `limit`; null: the full dataset")


class OverallRow(BaseModel):
    rank: int | None
    model_name: str
    model_display_name: str
    params_b: float | None
    average: float = Field(description="weighted average of the normalised values (over covered tasks if partial)")
    mean_rank: float | None
    covered: int
    coverage: str = Field(description="k/n tasks of the suite with a completed run")
    cells: dict[str, OverallCell | None]


class OverallSuite(BaseModel):
    name: str
    display_name: str
    tasks: list[OverallColumn]


class OverallBoardResponse(BaseModel):
    """`data`: the page of ranked rows (every task covered); `partial`: the page of models missing tasks."""

    suite: OverallSuite
    pick: str
    include_limited: bool = Field(description="runs on a subset (option `limit`) were considered too")
    sort: str
    order: str
    count: int = Field(description="ranked models in all")
    partial_count: int
    data: list[OverallRow]
    partial: list[OverallRow]
