"""Pydantic models of suites, shared by the API and the seed file so a suite is validated the same way
wherever it comes in."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from vlmevals.catalogue.fields import Description, DisplayName, Slug

MAX_SUITE_TASKS = 500


class SuiteMember(BaseModel):
    """A task of a suite and its weight in the suite's average (1 unless set)."""

    model_config = ConfigDict(extra="forbid")

    task: Slug
    weight: float = Field(default=1.0, gt=0, allow_inf_nan=False, description="a positive number; 1 by default")


class SuiteCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Slug
    display_name: DisplayName
    description: Description = ""
    tasks: list[SuiteMember] = Field(
        max_length=MAX_SUITE_TASKS,
        description="the suite's tasks in order: task names, or {task, weight} objects",
        examples=[["mmbench-dev-en", {"task": "mmstar", "weight": 2}]],
    )

    @field_validator("tasks", mode="before")
    @classmethod
    def _names_or_members(cls, v: Any) -> Any:
        if isinstance(v, list):
            return [{"task": item} if isinstance(item, str) else item for item in v]
        return v

    @model_validator(mode="after")
    def _not_empty_no_repeats(self) -> SuiteCreate:
        if not self.tasks:
            raise ValueError("tasks is empty: a suite needs at least one task; list task names in 'tasks'")
        seen: set[str] = set()
        for m in self.tasks:
            if m.task in seen:
                raise ValueError(f"tasks names {m.task!r} twice; list each task once (use weight to count it more)")
            seen.add(m.task)
        return self


class SuiteMemberPublic(SuiteMember):
    display_name: str
    higher_is_better: bool
    metric_scale: float


class SuitePublic(BaseModel):
    name: str
    display_name: str
    description: str
    tasks: list[SuiteMemberPublic]
    created_at: dt.datetime


class SuiteList(BaseModel):
    data: list[SuitePublic]
    count: int
