"""Which runs count on boards (task, overall, checkpoints), in score histories and as regression baselines: one
rule, written once.

A run counts when it completed with a primary metric and evaluated the whole dataset. A run started with the
option `limit` (a smoke test on the first N samples; `eval_runs.sample_limit` is not NULL) is a different
evaluation: 20 % on 5 samples must not outrank 10 % on 200. Limited runs stay in run listings, and boards show
them on request (`include_limited`), marked.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement

from vlmevals.core.vocabulary import RunStatus
from vlmevals.db.models import EvalRun


def full_dataset(r: type[EvalRun]) -> ColumnElement[bool]:
    """The run evaluated every sample of the task (no `limit` option)."""
    return r.sample_limit.is_(None)


def counted(r: type[EvalRun], *, include_limited: bool = False) -> list[ColumnElement[bool]]:
    """The conditions of a run that counts: completed, scored, and (unless asked otherwise) full-dataset."""
    conds = [r.status == RunStatus.COMPLETED, r.primary_metric.is_not(None)]
    return conds if include_limited else [*conds, full_dataset(r)]
