"""Storing a run's samples in PostgreSQL through the ingest hook (COPY, idempotent) and reading them back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from vlmevals.db.engine import session_scope
from vlmevals.results.samples.ingest import ingest_for_run
from vlmevals.results.samples.store import categories, list_samples, outcome_of

from tests.vlmeval_outputs import MODEL_NAME


@pytest.mark.integration
def test_ingest_stores_rows_idempotently(seeded, run_id: int, real: dict[str, Any]) -> None:
    md = real["cases"]["ok"]["model_dir"]
    metrics: dict[str, Any] = {}
    with session_scope(seeded) as s:
        cols = ingest_for_run(s, run_id, md, MODEL_NAME, "DEMO_SHAPES_MCQ", metrics)
    with session_scope(seeded) as s:  # a rerun, in a transaction of its own
        cols2 = ingest_for_run(s, run_id, md, MODEL_NAME, "DEMO_SHAPES_MCQ", metrics)
    assert cols == cols2 and cols["samples_total"] == 20 and cols["samples_failed"] == 0
    assert 0 <= cols["ci_low"] <= metrics["samples"]["official"] <= cols["ci_high"] <= 1
    with session_scope(seeded) as s:
        all_rows, n = list_samples(s, run_id, limit=1000)
        assert n == 20 and len(all_rows) == 20, "a rerun replaces, never duplicates"
        assert [r.sample_index for r in all_rows[:11]] == [str(i) for i in range(11)], "numeric order"
        _, right = list_samples(s, run_id, outcome="right")
        _, wrong = list_samples(s, run_id, outcome="wrong")
        _, failed = list_samples(s, run_id, outcome="failed")
        assert right + wrong == 20 and failed == 0
        assert right == round(20 * metrics["samples"]["official"])
        cats = categories(s, run_id)
        assert cats == {"colour": 10, "shape": 10}
        colour, nc = list_samples(s, run_id, category="colour", limit=3)
        assert nc == 10 and len(colour) == 3 and {r.category for r in colour} == {"colour"}
        assert all(r.extra and "A" in r.extra for r in colour), "JSONB survives COPY"


@pytest.mark.integration
def test_ingest_hook_never_loses_the_run(seeded, run_id: int, tmp_path: Path) -> None:
    (tmp_path / f"{MODEL_NAME}_D_exact_matching_result.xlsx").write_text("not a spreadsheet")
    metrics: dict[str, Any] = {}
    with session_scope(seeded) as s:
        assert ingest_for_run(s, run_id, tmp_path, MODEL_NAME, "D", metrics) == {}
    assert "samples_error" in metrics and "samples" not in metrics
    with session_scope(seeded) as s:
        assert ingest_for_run(s, run_id, tmp_path, MODEL_NAME, "NONE", {}) == {}


def test_outcome_of_tells_unscored_apart() -> None:
    assert [outcome_of(1.0, False), outcome_of(0.5, False), outcome_of(None, False), outcome_of(1.0, True)] == [
        "right",
        "wrong",
        "unscored",
        "failed",
    ]
