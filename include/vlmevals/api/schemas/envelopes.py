"""The evals API's envelopes around its resources: lists are `{data, count}` (count: all rows matching, not
the page), like Airflow's and the full-stack-fastapi-template's APIs; conflicts, cancellations, the user.
The resources themselves are defined once, in catalogue/schemas/ and api/resources.py."""

from __future__ import annotations

from typing import Generic, TypeVar

from pydantic import BaseModel, Field

from vlmevals.api.resources import ArtifactFile, RunSummary
from vlmevals.catalogue.schemas.tasks_models import EnrolmentPair, EnrolmentPublic, ModelPublic, TaskPublic

T = TypeVar("T")


class ListOf(BaseModel, Generic[T]):
    data: list[T]
    count: int = Field(description="rows matching the filters (all pages)")


class TaskList(ListOf[TaskPublic]):
    pass


class ModelList(ListOf[ModelPublic]):
    pass


class RunList(ListOf[RunSummary]):
    pass


class ConflictResponse(BaseModel):
    detail: str
    existing_run_id: int | None = None
    run: RunSummary | None = None


class ArtifactList(ListOf[ArtifactFile]):
    truncated: bool = False


class Me(BaseModel):
    username: str
    can_trigger: bool


class CancelResponse(BaseModel):
    run: RunSummary
    dag_run_stopped: bool


class EnrolmentList(ListOf[EnrolmentPublic]):
    pairs: list[EnrolmentPair] = Field(description="the (task, model) pairs the next nightly run covers")


class Unenrolled(BaseModel):
    detail: str
