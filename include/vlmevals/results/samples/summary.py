"""What a run's samples say: counts, two scores and the confidence interval.

VLMEvalKit scores failed samples as wrong, so two scores are kept: `official` (failed count as 0, what
VLMEvalKit reports) and `valid_only` (failed samples excluded from the denominator). The confidence interval
is the valid-only one: it describes the model, not the API's outages.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from vlmevals.results import stats
from vlmevals.results.samples.parse import SampleRecord


@dataclass
class SampleSummary:
    """What a run's samples say: counts, the official and valid-only score and the valid-only interval."""

    total: int
    failed: int
    scored: int
    source_file: str
    judge_failed: int = 0  # of `failed`: the judge's failures
    official: float | None = None  # failed counted as 0, on the task's scale (what VLMEvalKit reports)
    valid_only: float | None = None  # failed excluded, on the task's scale
    interval: stats.Interval | None = None  # 95 % CI of valid_only, on the task's scale
    scale: float = 1.0
    categories: dict[str, dict[str, float | int | None]] = field(default_factory=dict)

    def as_metrics(self) -> dict[str, Any]:
        """The summary as stored in the run's metrics (`metrics["samples"]`)."""
        return {
            "total": self.total,
            "failed": self.failed,
            "judge_failed": self.judge_failed,
            "scored": self.scored,
            "source_file": self.source_file,
            "official": self.official,
            "valid_only": self.valid_only,
            "scale": self.scale,
            "ci": self.interval.as_dict() if self.interval else None,
            "categories": self.categories,
        }

    def run_columns(self) -> dict[str, Any]:
        """Values for eval_runs' summary columns."""
        return {
            "samples_total": self.total,
            "samples_failed": self.failed,
            "samples_judge_failed": self.judge_failed,
            "ci_low": self.interval.low if self.interval else None,
            "ci_high": self.interval.high if self.interval else None,
        }


def _valid_scores(records: Sequence[SampleRecord]) -> list[float]:
    return [r.score for r in records if not r.failed and r.score is not None]


def summarise(records: Sequence[SampleRecord], source_file: str, scale: float = 1.0) -> SampleSummary:
    """Counts, official and valid-only score, interval and per-category breakdown, on the task's scale."""
    valid = _valid_scores(records)
    failed = sum(r.failed for r in records)
    summary = SampleSummary(
        total=len(records),
        failed=failed,
        scored=len(valid),
        source_file=source_file,
        scale=scale,
        judge_failed=sum(r.judge_failed for r in records),
    )
    if not valid:
        return summary
    total_for_official = [0.0 if r.failed or r.score is None else r.score for r in records]
    summary.official = scale * sum(total_for_official) / len(total_for_official)
    summary.interval = stats.score_interval(valid).scaled(scale)
    summary.valid_only = summary.interval.estimate
    by_cat: dict[str, list[SampleRecord]] = {}
    for r in records:
        by_cat.setdefault(r.category or "", []).append(r)
    for cat, rs in sorted(by_cat.items()):
        vs = _valid_scores(rs)
        summary.categories[cat] = {
            "total": len(rs),
            "failed": sum(r.failed for r in rs),
            "valid_only": scale * sum(vs) / len(vs) if vs else None,
        }
    return summary
