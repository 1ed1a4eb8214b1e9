"""Drops between consecutive checkpoints are flagged the way nightly regressions are: the same rule (the
task's tolerance), stored on the run with `kind: checkpoint_drop` and the previous checkpoint."""

from __future__ import annotations

from typing import Any

import pytest
from vlmevals.catalogue.store import get_model
from vlmevals.db.engine import session_scope
from vlmevals.db.models import Checkpoint, EvalRun
from vlmevals.results import regression
from vlmevals.runs import lifecycle

pytestmark = pytest.mark.integration
TASK, MODEL = "demo-shapes-mcq", "demo-tiny-idefics3"  # tolerance 0.01 on a 0-1 scale (seed file)


def _checkpoint(engine: Any, step: int | None, label: str | None = None) -> int:
    with session_scope(engine) as s:
        cp = Checkpoint(model_id=get_model(s, MODEL).id, step=step, label=label, weights_path="/w")
        s.add(cp)
        s.flush()
        return cp.id


def _run(engine: Any, checkpoint_id: int | None, score: float | None, status: str = "completed") -> int:
    with session_scope(engine) as s:
        run_id = lifecycle.create_run(s, TASK, MODEL, triggered_by="api", checkpoint_id=checkpoint_id).id
    if status == "completed":
        with session_scope(engine) as s:
            lifecycle.mark_completed(s, run_id, primary_metric=score, metrics={})
    else:
        with session_scope(engine) as s:
            lifecycle.mark_failed(s, run_id, "boom")
    return run_id


def _stored(engine: Any, run_id: int) -> tuple[bool, dict[str, Any] | None, int | None]:
    with session_scope(engine) as s:
        run = s.get_one(EvalRun, run_id)
        return run.regression, run.regression_detail, run.baseline_run_id


def test_drop_against_the_previous_checkpoint_is_flagged(seeded: Any) -> None:
    step0, step400, step100 = _checkpoint(seeded, 0), _checkpoint(seeded, 400), _checkpoint(seeded, 100)
    r0 = _run(seeded, step0, 0.30)
    with session_scope(seeded) as s:
        assert regression.check_run(s, r0) is None  # the first checkpoint has nothing to compare with
    r400 = _run(seeded, step400, 0.50)  # step 400 is registered before step 100: the order is by step
    r100 = _run(seeded, step100, 0.60)
    with session_scope(seeded) as s:
        v100 = regression.check_run(s, r100)
    assert v100 is not None and not v100.regression and v100.baseline_run_id == r0
    with session_scope(seeded) as s:
        v = regression.check_run(s, r400)
    assert v is not None and v.regression and v.baseline_run_id == r100 and v.delta == pytest.approx(-0.10)
    flagged, detail, baseline = _stored(seeded, r400)
    assert flagged and baseline == r100 and detail is not None
    assert detail["kind"] == "checkpoint_drop" and detail["method"] == "absolute_threshold"
    assert detail["previous_checkpoint"] == {"id": step100, "step": 100, "label": None}
    assert detail["checkpoint"] == {"id": step400, "step": 400, "label": None}
    assert detail["tolerance"] == pytest.approx(0.01)


def test_within_tolerance_and_skipping_failed_checkpoints(seeded: Any) -> None:
    c1, c2, c3 = _checkpoint(seeded, 1), _checkpoint(seeded, 2), _checkpoint(seeded, None, "final")
    r1 = _run(seeded, c1, 0.500)
    _run(seeded, c2, None, status="failed")  # step 2 has no completed run: step 1 is the one before "final"
    r3 = _run(seeded, c3, 0.495)
    with session_scope(seeded) as s:
        v = regression.check_run(s, r3)
    assert v is not None and not v.regression and v.baseline_run_id == r1
    assert _stored(seeded, r3)[1]["previous_checkpoint"]["step"] == 1  # type: ignore[index]


def test_nightly_baselines_ignore_checkpoint_runs(seeded: Any) -> None:
    cp = _checkpoint(seeded, 5)
    with session_scope(seeded) as s:
        first = lifecycle.create_run(s, TASK, MODEL, triggered_by="nightly").id
    with session_scope(seeded) as s:
        lifecycle.mark_completed(s, first, primary_metric=0.4, metrics={})
    _run(seeded, cp, 0.9)  # a checkpoint's run in between must not become the nightly baseline
    with session_scope(seeded) as s:
        nightly = lifecycle.create_run(s, TASK, MODEL, triggered_by="nightly").id
    with session_scope(seeded) as s:
        lifecycle.mark_completed(s, nightly, primary_metric=0.4, metrics={})
        v = regression.check_run(s, nightly)
    assert v is not None and not v.regression and v.baseline_run_id == first
