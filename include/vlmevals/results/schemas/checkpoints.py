"""The result types of a model's checkpoint scores, defined once: `results.checkpoint_scores` builds them and
the API serves them as they are (beside samples_compare.py, which holds samples and compare)."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field


class CheckpointTask(BaseModel):
    name: str
    display_name: str
    weight: float


class CheckpointCell(BaseModel):
    score: float = Field(description="normalised to 0-100, higher is better (the overall board's rule)")
    run_id: int = Field(description="the latest completed run of (task, model, checkpoint)")
    drop: bool = Field(description="the run is flagged as a drop against the previous checkpoint's run")


class CheckpointScoresRow(BaseModel):
    id: int
    step: int | None
    label: str | None
    created_at: dt.datetime
    scores: dict[str, CheckpointCell | None] = Field(description="task name -> cell; null: no completed run")
    average: float | None = Field(description="weighted mean over the covered tasks; null: none covered")
    coverage: int = Field(description="tasks of the suite with a completed run of this checkpoint")
    average_drop: bool = Field(description="the average fell against the previous checkpoint beyond the tolerance")
    best: bool = Field(description="the highest average among fully covered checkpoints (ties: the earliest)")
    judge_requests: int | None = Field(
        default=None, description="LLM judge requests of the runs shown, summed over the suite; null: none judged"
    )
    judge_cost_usd: float | None = Field(
        default=None, description="what those requests cost (priced judges only); null: no price known"
    )


class CheckpointScores(BaseModel):
    """A model's checkpoints on one suite, in training order (by step; labels without a step after, by date)."""

    model: str
    suite: str
    average_tolerance: float = Field(description="points (0-100) the average may fall before it is a drop")
    tasks: list[CheckpointTask]
    checkpoints: list[CheckpointScoresRow]


class CheckpointedModel(BaseModel):
    name: str
    display_name: str
    suite: str | None = Field(description="the model's suite (where its new checkpoints are evaluated)")
    checkpoints: int


class CheckpointedModelList(BaseModel):
    """Models with at least one checkpoint, by name: what the page's Checkpoints view offers."""

    data: list[CheckpointedModel]
    count: int
