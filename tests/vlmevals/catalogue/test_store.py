from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select
from vlmevals.catalogue.seed import seed
from vlmevals.catalogue.store import get_model, get_task
from vlmevals.core.errors import NotFoundError
from vlmevals.db.models import Model, Task

pytestmark = pytest.mark.integration


def test_seed_is_idempotent(session) -> None:
    first = seed(session)
    assert "task:demo-shapes-mcq" in first.created and "model:demo-tiny-idefics3" in first.created
    counts = (session.scalar(select(func.count(Task.id))), session.scalar(select(func.count(Model.id))))
    second = seed(session)
    assert second.created == [] and second.updated == []
    assert len(second.unchanged) == len(first.created)
    assert (session.scalar(select(func.count(Task.id))), session.scalar(select(func.count(Model.id)))) == counts


def test_seed_applies_changes_and_keeps_other_rows(session, tmp_path: Path) -> None:
    seed(session)
    session.add(Task(name="user-task", display_name="U", vlmeval_data="U"))
    session.flush()
    changed = tmp_path / "seed.yaml"
    changed.write_text(
        "tasks:\n  - name: demo-shapes-mcq\n    display_name: Renamed\n    vlmeval_data: DEMO_SHAPES_MCQ\n"
    )
    report = seed(session, changed)
    assert report.updated == ["task:demo-shapes-mcq"]
    assert get_task(session, "demo-shapes-mcq").display_name == "Renamed"
    assert get_task(session, "user-task").vlmeval_data == "U"


def test_seed_rejects_bad_entries(session, tmp_path: Path) -> None:
    bad = tmp_path / "seed.yaml"
    bad.write_text("models:\n  - name: Bad Name\n    display_name: x\n    vlmeval_model: x\n")
    with pytest.raises(ValueError, match="name"):
        seed(session, bad)


def test_unknown_names_list_known_ones(session) -> None:
    seed(session)
    with pytest.raises(NotFoundError, match=r"unknown model 'nope'.*demo-tiny-idefics3"):
        get_model(session, "nope")
    with pytest.raises(NotFoundError, match=r"unknown task 'nope'.*demo-shapes-mcq"):
        get_task(session, "nope")
