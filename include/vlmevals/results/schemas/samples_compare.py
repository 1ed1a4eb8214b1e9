"""The result types of the samples and compare resources, defined once: the domain functions return them, the
API routers serve them as they are and the regression check reads them by attribute, not by string key.

The intervals and the McNemar test are `vlmevals.results.stats`' own dataclasses, so their fields are
written down in one place.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from vlmevals.results.stats import Interval, McNemar

Outcome = Literal["all", "right", "wrong", "failed"]
SampleOutcome = Literal["right", "wrong", "failed", "unscored"]


# --- samples --------------------------------------------------------------------------------------------------


class SampleOut(BaseModel):
    sample_index: str
    category: str | None
    question: str | None
    answer: str | None
    prediction: str | None
    score: float | None = Field(description="VLMEvalKit's per-sample score: 1/0 hit, or a partial score 0..1")
    failed: bool = Field(description="the model (API) or the judge failed on this sample: not counted as wrong")
    outcome: SampleOutcome
    extra: dict[str, Any] | None = Field(description="other columns of the result file (options, judge log)")
    image: str = Field(description="URL of the sample's image")


class SampleList(BaseModel):
    run_id: int
    data: list[SampleOut]
    count: int = Field(description="samples matching the filters (all pages)")
    total: int | None = Field(description="all samples of the run")
    failed: int | None = Field(description="samples the model or judge failed on")
    categories: dict[str, int] = Field(description="category -> number of samples in the run")
    summary: dict[str, Any] | None = Field(description="official and valid-only score, 95% CI, per category")


# --- compare --------------------------------------------------------------------------------------------------


class ComparedRun(BaseModel):
    """One side of a comparison."""

    id: int
    model_name: str
    model_display_name: str
    status: str
    primary_metric: float | None
    ci_low: float | None
    ci_high: float | None
    samples_total: int | None
    samples_failed: int | None
    finished_at: str | None = Field(description="ISO 8601")
    fingerprint_hash: str | None


class SampleCounts(BaseModel):
    a: int
    b: int
    shared: int = Field(description="samples present in both runs")
    paired: int = Field(description="shared samples scored in both and failed in neither: what is compared")
    excluded_failed: int = Field(description="shared samples failed in either run")
    only_a: int
    only_b: int


class CategoryDelta(BaseModel):
    category: str
    n: int
    a: float
    b: float
    delta: float = Field(description="mean(b - a) on the task's scale")


class Flip(BaseModel):
    sample_index: str
    category: str | None
    score_a: float
    score_b: float


class Flips(BaseModel):
    right_to_wrong_count: int
    wrong_to_right_count: int
    right_to_wrong: list[Flip]
    wrong_to_right: list[Flip]
    truncated: bool = Field(description="a list was cut at max_flips")


class Comparison(BaseModel):
    """Run b against run a (b - a, on the task's scale) over the paired samples."""

    task: str
    metric_scale: float
    higher_is_better: bool
    run_a: ComparedRun
    run_b: ComparedRun
    samples: SampleCounts
    mean_a: float
    mean_b: float
    difference: Interval = Field(description="mean(b) - mean(a) with its 95% paired-bootstrap interval")
    mcnemar: McNemar | None = Field(description="exact McNemar test when both runs score 0/1")
    significant: bool = Field(description="the interval of the difference excludes zero")
    categories: list[CategoryDelta]
    flips: Flips
    comparability: list[str] = Field(description="why the two runs' scores may not be comparable; empty: comparable")
