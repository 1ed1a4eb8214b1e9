"""The overall board's pure rules: normalisation for both directions and both scales, competition ranks."""

from __future__ import annotations

import pytest
from vlmevals.db.models import Task
from vlmevals.results.overall import competition_ranks, normalise


@pytest.mark.parametrize(
    ("score", "higher", "scale", "value"),
    [(0.8, True, 1.0, 80.0), (0.2, False, 1.0, 80.0), (80.0, True, 100.0, 80.0), (20.0, False, 100.0, 80.0)],
)
def test_normalise(score: float, higher: bool, scale: float, value: float) -> None:
    assert normalise(score, Task(higher_is_better=higher, metric_scale=scale)) == pytest.approx(value)


def test_competition_ranks_share_ties() -> None:
    assert competition_ranks([70.0, 90.0, 70.0, 50.0, 90.0]) == [3, 1, 3, 5, 1]
    assert competition_ranks([]) == []
