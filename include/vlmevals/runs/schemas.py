"""Pydantic models of eval runs that the life cycle, the pipeline and the API share: the options a user may
set when triggering (validated the same way from the plugin, the DAG form and the CLI)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from vlmevals.catalogue.fields import VlmevalName
from vlmevals.core.constants import API_NPROC_MAX


class RunOptions(BaseModel):
    """Per-run options a user may set when triggering."""

    model_config = ConfigDict(extra="forbid")

    judge: VlmevalName | None = Field(default=None, description="VLMEvalKit --judge; default from EVALS_JUDGE")
    reuse: bool = Field(default=True, description="resume from partial results of earlier attempts")
    limit: int | None = Field(default=None, ge=1, description="evaluate only the first N samples")
    api_nproc: int | None = Field(
        default=None,
        ge=1,
        le=API_NPROC_MAX,
        description="parallel requests for served models; default: the model's api_nproc (within the endpoint cap)",
    )
    api_retry: int | None = Field(
        default=None, ge=1, le=20, description="VLMEvalKit --retry: tries per sample for API models (default 6)"
    )
