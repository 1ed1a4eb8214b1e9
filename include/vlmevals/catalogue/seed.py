"""Seeding the catalogue from a data file: tasks, models and nightly enrolments, idempotently."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from vlmevals.catalogue.enrolments import seed_enrolments
from vlmevals.catalogue.schemas.suites import SuiteCreate
from vlmevals.catalogue.schemas.tasks_models import ModelCreate, TaskCreate
from vlmevals.catalogue.store import model_columns
from vlmevals.catalogue.suites import upsert_suite
from vlmevals.db.models import Model, Task

SEED_FILE = Path(__file__).with_name("seed.yaml")


@dataclass
class SeedReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)


def _upsert(
    session: Session, cls: type[Task] | type[Model], values: dict[str, Any], report: SeedReport, kind: str
) -> None:
    row = session.scalar(select(cls).where(cls.name == values["name"]))
    label = f"{kind}:{values['name']}"
    if row is None:
        session.add(cls(**values))
        report.created.append(label)
        return
    changed = {k: v for k, v in values.items() if getattr(row, k) != v}
    if changed:
        for k, v in changed.items():
            setattr(row, k, v)
        report.updated.append(label)
    else:
        report.unchanged.append(label)


def _seed_model_suites(session: Session, models: list[dict[str, Any]], report: SeedReport) -> None:
    """Each seeded model's suite for checkpoints (after the suites, which may come from the same file)."""
    for values in models:
        suite_id = model_columns(session, values)["suite_id"]
        row = session.scalar(select(Model).where(Model.name == values["name"]))
        if row is None or row.suite_id == suite_id:
            continue
        row.suite_id = suite_id
        label = f"model:{values['name']}"
        if label in report.unchanged:
            report.unchanged.remove(label)
            report.updated.append(label)


def seed(session: Session, path: Path = SEED_FILE) -> SeedReport:
    """Load the catalogue file; running it twice changes nothing."""
    data = yaml.safe_load(path.read_text()) or {}
    report = SeedReport()
    for item in data.get("tasks", []):
        _upsert(session, Task, TaskCreate.model_validate(item).model_dump(), report, "task")
    models = [ModelCreate.model_validate(item).model_dump() for item in data.get("models", [])]
    for values in models:  # a model's suite is set below, once the seed file's suites exist
        _upsert(session, Model, {k: v for k, v in values.items() if k != "suite"}, report, "model")
    session.flush()
    for item in data.get("suites", []):
        suite = SuiteCreate.model_validate(item)
        getattr(report, upsert_suite(session, suite)).append(f"suite:{suite.name}")
    _seed_model_suites(session, models, report)
    created, unchanged = seed_enrolments(session, data.get("enrolments") or [])
    report.created += created
    report.unchanged += unchanged
    return report
