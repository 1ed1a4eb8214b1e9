"""Pydantic models of the catalogue (tasks, models, nightly enrolments) and the run options: one family per
resource (Create / Public), shared by the API, the seed file and the DAG params so a field is validated the
same way wherever it comes in."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from vlmevals.db.models import SLUG_PATTERN

Slug = Annotated[
    str,
    Field(
        pattern=SLUG_PATTERN,
        description="lower-case letters, digits, '.', '_' or '-'; starts with a letter "
        "or digit; at most 128 characters",
        examples=["mmbench-dev-en"],
    ),
]


class TaskCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Slug
    display_name: str = Field(min_length=1, max_length=256)
    vlmeval_data: str = Field(min_length=1, max_length=256, description="VLMEvalKit --data name")
    vlmeval_dataset_class: str | None = Field(
        default=None,
        max_length=128,
        description="VLMEvalKit dataset class, needed when a model with a spec runs a non-custom dataset",
    )
    primary_metric_suffix: str = Field(default="_acc.csv", min_length=1, max_length=64)
    primary_metric_key: str = Field(default="Overall", min_length=1, max_length=256)
    higher_is_better: bool = True
    metric_scale: float = Field(default=1.0, gt=0, description="full scale of the metric: 1 or 100")
    regression_tolerance: float = Field(
        default=0.01,
        ge=0,
        description="nightly runs dropping more than this (absolute, on the metric's scale) are flagged as regressions",
    )
    description: str = ""


class TaskPublic(TaskCreate):
    model_config = ConfigDict(from_attributes=True, extra="ignore")
    id: int
    created_at: dt.datetime


class ModelCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Slug
    display_name: str = Field(min_length=1, max_length=256)
    vlmeval_model: str = Field(min_length=1, max_length=256, description="VLMEvalKit --model name")
    model_type: Literal["vlm", "llm"] = "vlm"
    params_b: float | None = Field(default=None, ge=0, description="parameters, in billions")
    model_spec: dict[str, Any] | None = Field(
        default=None, description="VLMEvalKit --config model entry: {'class': ..., **kwargs}"
    )
    endpoint_base_url: str | None = Field(
        default=None, max_length=512, description="OpenAI-compatible base URL ending in /v1"
    )
    endpoint_key_env: str | None = Field(
        default=None, max_length=128, description="name of the environment variable holding the API key"
    )
    gpus: int = Field(default=1, ge=0, le=64)
    launch_mode: Literal["single", "torchrun"] = "single"
    description: str = ""

    @field_validator("model_spec")
    @classmethod
    def _spec_has_class(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        if v is not None and not isinstance(v.get("class"), str):
            raise ValueError("model_spec needs a 'class' naming a VLMEvalKit model class, e.g. 'Qwen2VLChat'")
        return v

    @field_validator("endpoint_base_url")
    @classmethod
    def _url_scheme(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("http://", "https://")):
            raise ValueError("endpoint_base_url must start with http:// or https://")
        return v

    @model_validator(mode="after")
    def _spec_xor_endpoint(self) -> ModelCreate:
        if self.model_spec is not None and self.endpoint_base_url is not None:
            raise ValueError("give either model_spec (local weights) or endpoint_base_url (served model), not both")
        return self


class ModelPublic(ModelCreate):
    model_config = ConfigDict(from_attributes=True, extra="ignore")
    id: int
    created_at: dt.datetime


class EnrolmentCreate(BaseModel):
    """Enrol a pair (task and model), a whole task (task only) or a whole model (model only)."""

    model_config = ConfigDict(extra="forbid")

    task: str | None = Field(default=None, description="catalogue name of the task; empty: every task")
    model: str | None = Field(default=None, description="catalogue name of the model; empty: every model")

    @model_validator(mode="after")
    def _target(self) -> EnrolmentCreate:
        if not self.task and not self.model:
            raise ValueError(
                "give a task, a model, or both (a task alone enrols every model on it, a model alone every task)"
            )
        return self


class EnrolmentPublic(BaseModel):
    id: int
    task: str | None
    model: str | None
    scope: str = Field(description="pair, task (every model) or model (every task)")
    enabled: bool = Field(description="false: an exclusion that keeps the pair out of the nightly run")
    created_by: str | None
    created_at: dt.datetime


class EnrolmentPair(BaseModel):
    """A (task, model) pair the next nightly run covers."""

    task: str
    model: str


RunStatus = Literal["queued", "running", "completed", "failed", "cancelled"]


class RunOptions(BaseModel):
    """Per-run options a user may set when triggering."""

    model_config = ConfigDict(extra="forbid")

    judge: str | None = Field(default=None, description="VLMEvalKit --judge; default from EVALS_JUDGE")
    reuse: bool = Field(default=True, description="resume from partial results of earlier attempts")
    limit: int | None = Field(default=None, ge=1, description="evaluate only the first N samples")
    api_nproc: int = Field(default=4, ge=1, le=64, description="parallel requests for API models")
    api_retry: int | None = Field(
        default=None, ge=1, le=20, description="VLMEvalKit --retry: tries per sample for API models (default 6)"
    )
