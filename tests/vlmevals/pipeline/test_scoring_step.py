"""`scoring` without predictions (inference's task marked success in Airflow mid-way) names the missing file."""

from __future__ import annotations

from typing import Any

import pytest
from vlmevals.core.errors import VLMEvalFailure
from vlmevals.pipeline import steps

pytestmark = pytest.mark.integration


def test_scoring_without_predictions_names_the_missing_file(seeded: Any, queued_run: int) -> None:
    with pytest.raises(VLMEvalFailure) as err:
        steps.scoring_step(seeded, queued_run, 1)
    message = str(err.value)
    assert "no predictions to score" in message and "_DEMO_SHAPES_MCQ.xlsx does not exist" in message, message
    assert "marked success in Airflow" in message
