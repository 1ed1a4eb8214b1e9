"""Pydantic models of checkpoints, shared by the API and the `eval_checkpoint` DAG's asset events, so a
checkpoint is validated the same way wherever it comes in."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.config import JsonDict

from vlmevals.catalogue.fields import JsonInt, Slug
from vlmevals.db.models import CHECKPOINT_LABEL_PATTERN

# documents the model validator below: a step or a label, and exactly one source of weights
_STEP_OR_LABEL_ONE_SOURCE: JsonDict = {
    "allOf": [
        {"anyOf": [{"required": ["step"]}, {"required": ["label"]}]},
        {"oneOf": [{"required": ["weights_path"]}, {"required": ["hub_revision"]}]},
    ]
}


class CheckpointCreate(BaseModel):
    """A saved state of a model: its training step (or a label) and where its weights are."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_STEP_OR_LABEL_ONE_SOURCE)

    step: JsonInt | None = Field(default=None, ge=0, le=2**63 - 1, description="training step (>= 0)")
    label: str | None = Field(
        default=None,
        pattern=CHECKPOINT_LABEL_PATTERN,
        description="a name instead of (or beside) the step, e.g. 'final' or 'ep3'",
    )
    weights_path: str | None = Field(
        default=None,
        min_length=1,
        max_length=4096,
        pattern=r"^[^\x00-\x1f\x7f]+$",
        description="folder (or file) of the checkpoint's weights on the machine that registers it; replaces "
        "the model spec's model_path",
    )
    hub_revision: str | None = Field(
        default=None,
        max_length=256,
        pattern=r"^[A-Za-z0-9._/-]+$",
        description="branch, tag or commit of the model's Hub repo holding this checkpoint; replaces the "
        "model's revision",
    )
    suite: Slug | None = Field(default=None, description="suite to evaluate it on (default: the model's suite)")
    mlflow_run_id: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="the training run in MLflow: the suite's scores are logged into it at `step` (eval/<task>)",
    )
    tensorboard_dir: str | None = Field(
        default=None,
        max_length=4096,
        pattern=r"^/[^\x00-\x1f\x7f]*$",
        description="the training run's TensorBoard log dir (absolute): eval/<task> scalars go there at `step`",
    )
    wandb_run_path: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_.-]{1,64}/[A-Za-z0-9_.-]{1,128}/[A-Za-z0-9_-]{1,64}$",
        description="the training run in W&B as entity/project/run_id (its URL's tail): eval/<task> is logged "
        "into it against the x-axis checkpoint_step",
    )

    @model_validator(mode="after")
    def _step_or_label_one_source(self) -> CheckpointCreate:
        if self.step is None and self.label is None:
            raise ValueError("give step (the training step, an integer >= 0) or label (e.g. 'final'), or both")
        if (self.weights_path is None) == (self.hub_revision is None):
            raise ValueError(
                "give exactly one of weights_path (a local folder of weights) or hub_revision (a branch, tag or "
                "commit of the model's Hub repo)"
            )
        return self


class CheckpointEvent(CheckpointCreate):
    """An asset event's `extra` on `model_checkpoints`: the checkpoint and the catalogue model it belongs to."""

    model: Slug = Field(description="catalogue name of the model")


class CheckpointPublic(BaseModel):
    id: int
    model: str
    step: int | None
    label: str | None
    weights_path: str | None
    hub_revision: str | None
    created_at: dt.datetime
    created_by: str | None
    mlflow_run_id: str | None = None
    tensorboard_dir: str | None = None
    wandb_run_path: str | None = None


class CheckpointRef(BaseModel):
    """The checkpoint a run evaluated, as runs show it."""

    id: int
    step: int | None
    label: str | None


class CheckpointList(BaseModel):
    data: list[CheckpointPublic]
    count: int


def checkpoint_ref(checkpoint: Any) -> CheckpointRef | None:
    """A run's checkpoint (an ORM row or None) as runs show it."""
    if checkpoint is None:
        return None
    return CheckpointRef(id=checkpoint.id, step=checkpoint.step, label=checkpoint.label)
