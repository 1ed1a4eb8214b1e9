"""`scoring` without predictions (inference's task marked success in Airflow mid-way) names the missing file."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from vlmevals.core.errors import VLMEvalFailure
from vlmevals.pipeline import steps

pytestmark = pytest.mark.integration


def test_scoring_without_predictions_names_the_missing_file(seeded: Any, demo_assets: dict[str, Path]) -> None:
    info = steps.queue_step(
        seeded,
        {"task": "demo-shapes-mcq", "model": "demo-tiny-idefics3"},
        dag_id="eval_run",
        dag_run_id=f"t__{time.time_ns()}",
        run_type="manual",
        user=None,
    )
    with pytest.raises(VLMEvalFailure) as err:
        steps.scoring_step(seeded, int(info["eval_run_id"]), 1)
    message = str(err.value)
    assert "no predictions to score" in message and "_DEMO_SHAPES_MCQ.xlsx does not exist" in message, message
    assert "marked success in Airflow" in message
