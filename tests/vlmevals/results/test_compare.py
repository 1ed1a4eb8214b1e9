"""The paired comparison as a typed result on real PostgreSQL, and the paired regression check reading it:
pairing leaves failed samples out, flips and categories are counted from the stored rows."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import pytest
from vlmevals.core.errors import InvalidRequestError, NotFoundError
from vlmevals.db.engine import session_scope
from vlmevals.db.models import EvalRun
from vlmevals.results import regression
from vlmevals.results.compare import compare_runs
from vlmevals.results.leaderboard import latest_with_samples
from vlmevals.results.samples.parse import SampleRecord
from vlmevals.results.samples.store import store
from vlmevals.results.schemas.samples_compare import Comparison
from vlmevals.runs import lifecycle

pytestmark = pytest.mark.integration
TASK, MODEL = "demo-shapes-mcq", "demo-tiny-idefics3"


def _run(engine: Any, scores: list[float | None], failed: Collection[int] = ()) -> int:
    """A completed nightly run whose samples score `scores` (index i, category by parity)."""
    with session_scope(engine) as s:
        run_id = lifecycle.create_run(s, TASK, MODEL, triggered_by="nightly").id
    recs = [
        SampleRecord(str(i), "even" if i % 2 == 0 else "odd", "q", "A", "A", sc, i in failed)
        for i, sc in enumerate(scores)
    ]
    valid = [sc or 0.0 for i, sc in enumerate(scores) if i not in failed]
    with session_scope(engine) as s:
        store(s, run_id, recs)
        lifecycle.mark_completed(
            s, run_id, primary_metric=sum(valid) / len(scores), metrics={}, extra={"samples_total": len(scores)}
        )
    return run_id


def test_comparison_is_typed_and_pairs_only_clean_samples(seeded: Any) -> None:
    a = _run(seeded, [1.0] * 30 + [0.0] * 10)
    b = _run(seeded, [0.0] * 15 + [1.0] * 15 + [0.0] * 9 + [1.0], failed={39})
    with session_scope(seeded) as s:
        c = compare_runs(s, a, b, max_flips=5)
        assert isinstance(c, Comparison) and c.task == TASK and c.run_a.id == a and c.run_b.id == b
        assert (c.samples.shared, c.samples.paired, c.samples.excluded_failed) == (40, 39, 1)
        assert c.flips.right_to_wrong_count == 15 and c.flips.wrong_to_right_count == 0
        assert [f.sample_index for f in c.flips.right_to_wrong] == ["0", "1", "2", "3", "4"] and c.flips.truncated
        assert c.difference.estimate == pytest.approx(-15 / 39) and c.difference.high < 0 and c.significant
        assert c.mcnemar is not None and c.mcnemar.right_to_wrong == 15 and c.mcnemar.p_value < 0.001
        assert {d.category: d.n for d in c.categories} == {"even": 20, "odd": 19}
        assert c.comparability == ["fingerprint missing on one run"]
        body = c.model_dump(mode="json")
        assert body["difference"]["method"] == "paired-bootstrap" and body["mcnemar"]["method"] == "exact-mcnemar"
        assert latest_with_samples(s, s.get(EvalRun, b).task, MODEL).id == b
        with pytest.raises(NotFoundError, match="no model named"):
            latest_with_samples(s, s.get(EvalRun, b).task, "ghost")
        with pytest.raises(NotFoundError, match="no eval run with id 999999"):
            compare_runs(s, a, 999999)


def test_runs_without_shared_scored_samples_are_refused(seeded: Any) -> None:
    a = _run(seeded, [1.0, 0.0])
    b = _run(seeded, [None, None])
    with session_scope(seeded) as s, pytest.raises(InvalidRequestError, match="share no sample scored in both"):
        compare_runs(s, a, b)


def test_paired_regression_reads_the_comparison(seeded: Any) -> None:
    base = _run(seeded, [1.0] * 30 + [0.0] * 10)
    worse = _run(seeded, [0.0] * 15 + [1.0] * 15 + [0.0] * 10)
    with session_scope(seeded) as s:
        v = regression.check_run(s, worse)
    assert v is not None and v.regression and v.method == "paired_bootstrap+exact_mcnemar"
    assert v.baseline_run_id == base and v.extra["paired_samples"] == 40 and v.extra["right_to_wrong"] == 15
    with session_scope(seeded) as s:
        run = s.get(EvalRun, worse)
        assert run is not None and run.regression and run.baseline_run_id == base
        assert run.regression_detail is not None and run.regression_detail["ci_high"] < 0
    same = _run(seeded, [1.0] * 30 + [0.0] * 10)
    with session_scope(seeded) as s:
        again = regression.check_run(s, same)
    assert again is not None and not again.regression and again.baseline_run_id == worse
