"""No GPU lease outlives its eval run's DAG run: `finalize` frees what a killed inference task left held."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import func, select
from vlmevals.core.settings import GpuSettings
from vlmevals.db.engine import session_scope
from vlmevals.db.models import GpuLease
from vlmevals.gpu import leases as gpus
from vlmevals.pipeline import steps

pytestmark = pytest.mark.integration


def _held(engine: Any, run_id: int) -> int:
    with session_scope(engine) as s:
        return int(s.scalar(select(func.count()).where(GpuLease.run_id == run_id)) or 0)


def _lease(engine: Any, run_id: int) -> gpus.Lease:
    settings = GpuSettings.model_validate({"EVALS_GPUS": "0,1", "EVALS_GPU_HOST": "node-f", "EVALS_GPU_WAIT_S": 5})
    return gpus.acquire(engine, 1, holder=f"inference of {run_id}", run_id=run_id, settings=settings)


def test_finalize_frees_a_lease_its_killed_holder_left(seeded: Any, queued_run: int) -> None:
    run_id = queued_run
    _lease(seeded, run_id)  # never released: the holder was SIGKILLed
    assert _held(seeded, run_id) == 1
    assert steps.finalize_step(seeded, run_id, "t__dag-run") == "failed"
    assert _held(seeded, run_id) == 0, "the final run holds no GPU"


def test_the_holder_gets_its_grace_before_the_lease_is_taken(seeded: Any, queued_run: int) -> None:
    run_id = queued_run
    lease = _lease(seeded, run_id)
    threading.Timer(0.5, lease.release).start()  # still ending VLMEvalKit's group when the teardown starts
    assert gpus.release_run(seeded, run_id, wait_s=10) == [], "released by its holder, not taken from it"
    assert _held(seeded, run_id) == 0
