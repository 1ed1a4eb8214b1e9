"""The `eval_samples` table: replace a run's samples in one transaction (COPY), and the reads behind the samples
endpoint and the comparisons.

Outcomes, in SQL and in Python alike: right = full marks, wrong = below full marks (or unscored) and not
failed, failed = the model (API) or the judge failed on it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple, get_args

from sqlalchemy import ColumnElement, Connection, delete, func, insert, select
from sqlalchemy.orm import Session

from vlmevals.db.models import EvalSample
from vlmevals.results.samples.parse import SampleRecord
from vlmevals.results.schemas.samples_compare import Outcome, SampleOutcome

OUTCOMES: tuple[str, ...] = get_args(Outcome)
FULL_MARKS = 1.0  # a sample scored at least this is right
COPY_COLUMNS = (
    "run_id",
    "sample_index",
    "category",
    "question",
    "answer",
    "prediction",
    "score",
    "failed",
    "judge_failed",
    "extra",  # last: the executemany fallback reads it as r[-1]
)


class ScoredSample(NamedTuple):
    score: float | None
    failed: bool
    category: str | None


def record_rows(records: Iterable[SampleRecord]) -> list[tuple[Any, ...]]:
    """COPY rows of records, without the run id (parsed in backfill's worker processes before the run exists)."""
    return [
        (
            r.sample_index,
            r.category,
            r.question,
            r.answer,
            r.prediction,
            r.score,
            r.failed,
            r.judge_failed,
            json.dumps(r.extra) if r.extra else None,
        )
        for r in records
    ]


def _can_copy(raw: Any) -> bool:
    """A psycopg 3 connection (COPY FROM STDIN with write_row); other drivers fall back to executemany."""
    return type(raw).__module__.startswith("psycopg") and hasattr(raw, "cursor") and hasattr(raw.cursor(), "copy")


def replace_samples(conn: Connection, runs: Sequence[tuple[int, Sequence[tuple[Any, ...]]]]) -> int:
    """Replace the samples of each (run id, record_rows) in the caller's transaction: one DELETE and one COPY
    for all of them (backfill stores thousands of runs' samples per batch this way)."""
    if not runs:
        return 0
    conn.execute(delete(EvalSample).where(EvalSample.run_id.in_([rid for rid, _ in runs])))
    raw: Any = conn.connection.driver_connection
    n = 0
    if _can_copy(raw):
        with raw.cursor() as cur, cur.copy(f"COPY eval_samples ({', '.join(COPY_COLUMNS)}) FROM STDIN") as cp:
            for rid, rows in runs:
                for row in rows:
                    cp.write_row((rid, *row))
                n += len(rows)
        return n
    values = [
        dict(zip(COPY_COLUMNS, (rid, *r), strict=True)) | {"extra": json.loads(r[-1]) if r[-1] else None}
        for rid, rows in runs
        for r in rows
    ]
    if values:
        conn.execute(insert(EvalSample), values)
    return len(values)


def store(session: Session, run_id: int, records: Iterable[SampleRecord]) -> int:
    """Replace run_id's samples with `records` in the caller's transaction (COPY on psycopg 3, else executemany)."""
    return replace_samples(session.connection(), [(run_id, record_rows(records))])


def outcome_filter(outcome: str) -> ColumnElement[bool] | None:
    """SQL condition for an outcome (see the module docstring); None for all."""
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}, got {outcome!r}")
    if outcome == "failed":
        return EvalSample.failed.is_(True)
    if outcome == "wrong":
        return EvalSample.failed.is_(False) & (func.coalesce(EvalSample.score, 0) < FULL_MARKS)
    if outcome == "right":
        return EvalSample.failed.is_(False) & (EvalSample.score >= FULL_MARKS)
    return None


def outcome_of(score: float | None, failed: bool) -> SampleOutcome:
    """One sample's outcome; unlike the `wrong` filter it tells an unscored sample apart."""
    if failed:
        return "failed"
    if score is None:
        return "unscored"
    return "right" if score >= FULL_MARKS else "wrong"


def list_samples(
    session: Session,
    run_id: int,
    *,
    category: str | None = None,
    outcome: str = "all",
    offset: int = 0,
    limit: int = 50,
) -> tuple[list[EvalSample], int]:
    """One page of a run's samples (ordered by numeric index where possible) and the filtered count."""
    conds = [EvalSample.run_id == run_id]
    if category is not None:
        conds.append(EvalSample.category == category)
    cond = outcome_filter(outcome)
    if cond is not None:
        conds.append(cond)
    count = session.scalar(select(func.count()).select_from(EvalSample).where(*conds)) or 0
    numeric = func.length(EvalSample.sample_index)  # "10" after "9": sort by length, then text
    rows = session.scalars(
        select(EvalSample).where(*conds).order_by(numeric, EvalSample.sample_index).offset(offset).limit(limit)
    ).all()
    return list(rows), int(count)


def categories(session: Session, run_id: int) -> dict[str, int]:
    """category -> number of the run's samples ("" for samples without one)."""
    rows = session.execute(
        select(EvalSample.category, func.count())
        .where(EvalSample.run_id == run_id)
        .group_by(EvalSample.category)
        .order_by(EvalSample.category)
    ).all()
    return {c if c is not None else "": int(n) for c, n in rows}


def scores_of(session: Session, run_id: int) -> dict[str, ScoredSample]:
    """sample_index -> (score, failed, category) of one run, for comparisons."""
    rows = session.execute(
        select(EvalSample.sample_index, EvalSample.score, EvalSample.failed, EvalSample.category).where(
            EvalSample.run_id == run_id
        )
    ).all()
    return {i: ScoredSample(s, f, c) for i, s, f, c in rows}
