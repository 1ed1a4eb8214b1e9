"""Pydantic models of the catalogue and runs: one family per entity (Create / Public), shared by the API,
the seed file and the DAG params so a field is validated the same way wherever it comes in."""

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
    dataset_url: str | None = Field(
        default=None,
        max_length=2048,
        pattern=r"^https?://",
        description="download the dataset TSV from here (a dataset of your own); needs dataset_md5",
    )
    dataset_md5: str | None = Field(
        default=None, pattern=r"^[0-9a-f]{32}$", description="md5 of the TSV at dataset_url (32 hex digits)"
    )

    @model_validator(mode="after")
    def _url_has_md5(self) -> TaskCreate:
        if (self.dataset_url is None) != (self.dataset_md5 is None):
            raise ValueError("give dataset_url and dataset_md5 together (the md5 verifies the download)")
        return self


class TaskPublic(TaskCreate):
    model_config = ConfigDict(from_attributes=True, extra="ignore")
    id: int
    needs_llm_judge: bool | None = Field(default=None, description="VLMEvalKit scores this dataset with an LLM judge")
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
    revision: str | None = Field(
        default=None,
        max_length=256,
        pattern=r"^[A-Za-z0-9._/-]+$",
        description="Hub weights: the branch, tag or commit to pin (default: the repo's main branch)",
    )

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
