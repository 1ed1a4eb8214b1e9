"""Which runs count on boards: the rule lives in `runs.counted` (the board entries maintained with each completion,
layer `runs`, apply it too); imported here by the readers of results."""

from __future__ import annotations

from vlmevals.runs.counted import counted, full_dataset

__all__ = ["counted", "full_dataset"]
