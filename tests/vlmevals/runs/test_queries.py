"""The run listing (the page's ids chosen from eval_runs alone, the total beside them in one statement): the same
order, totals and rows as a plain sort of every run, for each filter, every offset and past the end."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select, update
from vlmevals.catalogue.store import get_model, get_task
from vlmevals.db.engine import session_scope
from vlmevals.db.models import EvalRun
from vlmevals.runs.queries import list_runs

from tests.vlmevals.api.conftest import add_run

pytestmark = pytest.mark.integration
PAIRS = [
    ("demo-shapes-mcq", "demo-tiny-idefics3"),
    ("demo-colors-vqa", "demo-tiny-idefics3"),
    ("demo-shapes-mcq", "internvl2.5-2b"),
]


@pytest.fixture()
def runs(seeded):
    statuses = ("completed", "failed", "cancelled")
    ids = [add_run(seeded, t, m, status=statuses[i % 3]) for i in range(4) for t, m in PAIRS]
    with session_scope(seeded) as s:  # ties on created_at (the id breaks them) and a run older than its id says
        s.execute(
            update(EvalRun).where(EvalRun.id.in_(ids[:6])).values(created_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
        )
        s.execute(
            update(EvalRun).where(EvalRun.id == ids[-1]).values(created_at=dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
        )
    return seeded


@pytest.mark.parametrize(
    ("task", "model", "statuses"),
    [
        (None, None, ()),
        ("demo-shapes-mcq", None, ()),
        ("demo-shapes-mcq", "internvl2.5-2b", ()),
        (None, "demo-tiny-idefics3", ("completed", "failed")),
        ("demo-colors-vqa", None, ("cancelled",)),
        ("mmbench-dev-en", None, ()),
    ],
)
def test_pages_match_a_plain_sort(runs, task: str | None, model: str | None, statuses: tuple[str, ...]) -> None:
    with session_scope(runs) as s:
        t = get_task(s, task) if task else None
        m = get_model(s, model) if model else None
        everything = s.scalars(select(EvalRun)).all()
        want = [
            r.id
            for r in sorted(everything, key=lambda r: (r.created_at, r.id), reverse=True)
            if (t is None or r.task_id == t.id)
            and (m is None or r.model_id == m.id)
            and (not statuses or r.status in statuses)
        ]
        for limit in (1, 3, 50):
            for offset in range(0, len(want) + 3):
                rows, total = list_runs(s, t, statuses=statuses, model=m, limit=limit, offset=offset)
                assert total == len(want) and [r.id for r in rows] == want[offset : offset + limit]
        rows, _ = list_runs(s, t, statuses=statuses, model=m)
        assert all(r.model.name and r.task.name for r in rows)  # loaded with the page
