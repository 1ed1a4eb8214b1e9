"""Pydantic models of the catalogue (tasks, models, nightly enrolments) and the run options: one family per
resource (Create / Public), shared by the API, the seed file and the DAG params so a field is validated the
same way wherever it comes in."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, field_validator, model_validator
from pydantic.config import JsonDict

from vlmevals.catalogue.fields import (
    HTTP_URL_PATTERN,
    DatasetUrl,
    Description,
    DisplayName,
    HttpUrl,
    Identifier,
    JsonInt,
    MetricKey,
    MetricScale,
    MetricSuffix,
    NprocInt,
    Slug,
    VlmevalName,
)
from vlmevals.catalogue.schemas.serve import ServeSpec, check_served_model
from vlmevals.core.constants import API_NPROC_MAX


class TaskCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Slug
    display_name: DisplayName
    vlmeval_data: VlmevalName = Field(description="VLMEvalKit --data name")
    vlmeval_dataset_class: Identifier | None = Field(
        default=None,
        description="VLMEvalKit dataset class, needed when a model with a spec runs a non-custom dataset",
    )
    primary_metric_suffix: MetricSuffix = "_acc.csv"
    primary_metric_key: MetricKey = "Overall"
    higher_is_better: StrictBool = True
    metric_scale: MetricScale = Field(default=1, description="full scale of the metric: 1 (fractions) or 100 (percent)")
    regression_tolerance: StrictFloat = Field(
        default=0.01,
        ge=0,
        le=100,
        description="nightly runs dropping more than this (absolute, on the metric's scale) are flagged as regressions",
    )
    description: Description = ""
    dataset_url: DatasetUrl | None = None
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


class ModelSpec(BaseModel):
    """VLMEvalKit --config model entry: the model class and its keyword arguments (any JSON values)."""

    model_config = ConfigDict(extra="allow", serialize_by_alias=True)

    class_: Identifier = Field(alias="class", description="VLMEvalKit model class, e.g. Qwen2VLChat")

    @model_validator(mode="before")
    @classmethod
    def _has_class(cls, v: Any) -> Any:
        if isinstance(v, dict) and not isinstance(v.get("class"), str):
            raise ValueError("model_spec needs a 'class' naming a VLMEvalKit model class, e.g. 'Qwen2VLChat'")
        return v


# served models: concurrent requests VLMEvalKit sends (--api-nproc); None = EVALS_API_NPROC_DEFAULT. Runs of
# models on one endpoint share EVALS_ENDPOINT_MAX_CONCURRENCY (vlmevals.runs.concurrency).
ApiNproc = Annotated[
    NprocInt | None,
    Field(
        description=f"served models: concurrent requests, 1..{API_NPROC_MAX}; null = the service default "
        "(EVALS_API_NPROC_DEFAULT); capped per endpoint by EVALS_ENDPOINT_MAX_CONCURRENCY",
    ),
]

# documents the model validator below: a spec object and an endpoint URL together are refused
_SPEC_OR_ENDPOINT: JsonDict = {
    "not": {
        "required": ["model_spec", "endpoint_base_url"],
        "properties": {"model_spec": {"type": "object"}, "endpoint_base_url": {"type": "string"}},
    }
}


class ModelCreate(BaseModel):
    """A model: a VLMEvalKit registry name, local weights (`model_spec`) or a served endpoint, not both."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_SPEC_OR_ENDPOINT)

    name: Slug
    display_name: DisplayName
    vlmeval_model: VlmevalName = Field(description="VLMEvalKit --model name")
    model_type: Literal["vlm", "llm"] = "vlm"
    params_b: StrictFloat | None = Field(default=None, ge=0, le=1e6, description="parameters, in billions")
    model_spec: ModelSpec | None = None
    endpoint_base_url: HttpUrl | None = Field(default=None, description="OpenAI-compatible base URL ending in /v1")
    endpoint_key_env: Identifier | None = Field(
        default=None, description="name of the environment variable holding the API key"
    )
    gpus: JsonInt = Field(default=1, ge=0, le=64)
    api_nproc: ApiNproc = None
    launch_mode: Literal["single", "torchrun"] = "single"
    description: Description = ""
    revision: str | None = Field(
        default=None,
        max_length=256,
        pattern=r"^[A-Za-z0-9._/-]+$",
        description="Hub weights: the branch, tag or commit to pin (default: the repo's main branch)",
    )
    suite: Slug | None = Field(default=None, description="the suite a new checkpoint of this model is evaluated on")
    serve: ServeSpec | None = Field(
        default=None, description="the service runs the weights (model_spec.model_path) in this inference engine"
    )

    @field_validator("endpoint_base_url", mode="before")
    @classmethod
    def _url_scheme(cls, v: Any) -> Any:
        if isinstance(v, str) and not re.match(HTTP_URL_PATTERN, v):
            raise ValueError(
                "endpoint_base_url must start with http:// or https:// (at most 512 characters, no spaces)"
            )
        return v

    @model_validator(mode="after")
    def _spec_xor_endpoint(self) -> ModelCreate:
        if self.model_spec is not None and self.endpoint_base_url is not None:
            raise ValueError("give either model_spec (local weights) or endpoint_base_url (served model), not both")
        spec = self.model_spec.model_dump() if self.model_spec is not None else None
        self.serve = check_served_model(self.serve, spec, self.endpoint_base_url, self.gpus)
        return self


class ModelPublic(ModelCreate):
    model_config = ConfigDict(from_attributes=True, extra="ignore")
    id: int
    created_at: dt.datetime

    @field_validator("suite", mode="before")
    @classmethod
    def _suite_name(cls, v: Any) -> Any:
        return getattr(v, "name", v)  # the ORM row's suite is a Suite


class ModelUpdate(BaseModel):
    """What can change on a registered model without changing its results (PATCH /api/evals/models/{name}): its
    suite for checkpoints (null removes it) and its request concurrency; fields left out stay as they are."""

    model_config = ConfigDict(extra="forbid")

    suite: Slug | None = Field(
        default=None, description="the suite a new checkpoint of this model is evaluated on; null: none"
    )
    api_nproc: ApiNproc = None


# documents the model validator below: at least one of task, model and suite, as a string (null is "not given")
_TASK_OR_MODEL: JsonDict = {
    "anyOf": [
        {"required": ["task"], "properties": {"task": {"type": "string"}}},
        {"required": ["model"], "properties": {"model": {"type": "string"}}},
        {"required": ["suite"], "properties": {"suite": {"type": "string"}}},
    ],
    "not": {"required": ["task", "suite"], "properties": {"task": {"type": "string"}, "suite": {"type": "string"}}},
}


class EnrolmentCreate(BaseModel):
    """Enrol a pair (task and model), a whole task (task only), a whole model (model only), or a suite: with a
    model, that model on every task of the suite; alone, every model with an enrolment or a completed run on
    one of the suite's tasks (vlmevals.nightly.planning.resolve_pairs)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_TASK_OR_MODEL)

    task: Slug | None = Field(default=None, description="catalogue name of the task; absent: every task")
    model: Slug | None = Field(default=None, description="catalogue name of the model; absent: every model")
    suite: Slug | None = Field(default=None, description="name of a suite: its tasks instead of one task")

    @model_validator(mode="after")
    def _target(self) -> EnrolmentCreate:
        if self.task and self.suite:
            raise ValueError("task, suite: give a task or a suite, not both (a suite stands for its tasks)")
        if not self.task and not self.model and not self.suite:
            raise ValueError(
                "give a task, a model, a suite, or a model with a task or suite (a task alone enrols every model "
                "on it, a model alone every task, a suite alone every model already on its tasks)"
            )
        return self


class EnrolmentPublic(BaseModel):
    id: int
    task: str | None
    model: str | None
    suite: str | None = None
    scope: str = Field(
        description="pair, task (every model), model (every task), suite-model (the model on every task of the "
        "suite) or suite (every model already on its tasks)"
    )
    enabled: bool = Field(description="false: an exclusion that keeps the pair out of the nightly run")
    created_by: str | None
    created_at: dt.datetime


class EnrolmentPair(BaseModel):
    """A (task, model) pair the next nightly run covers."""

    task: str
    model: str
