"""Drift marks for a leaderboard: which rows were produced under conditions that break comparability with the
rest (a different dataset md5, judge or VLMEvalKit version; see fingerprint.comparability_breaks).

The reference is the majority of the table's fingerprinted rows (ties broken by the newest run), so one run
on a re-downloaded dataset is marked, not the nine that agree. Rows without a fingerprint (backfilled or older
runs) are marked "no fingerprint recorded": they may or may not be comparable, and the reader should know.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from vlmevals.results.fingerprint import comparability_breaks, comparability_key

NO_FINGERPRINT = "no fingerprint recorded"


def drift_marks(rows: Iterable[tuple[int, Mapping[str, Any] | None]]) -> dict[int, list[str]]:
    """run_id -> reasons the row is not comparable with the table's majority (empty list: comparable)."""
    rows = list(rows)
    printed = [(rid, fp) for rid, fp in rows if fp]
    out: dict[int, list[str]] = {rid: ([] if fp else [NO_FINGERPRINT]) for rid, fp in rows}
    if not printed:
        return out
    ref_key = _reference_key(printed)
    reference = next(fp for _, fp in printed if comparability_key(fp) == ref_key)
    for rid, fp in printed:
        out[rid] = comparability_breaks(reference, fp)
    return out


def _reference_key(printed: list[tuple[int, Mapping[str, Any]]]) -> tuple[Any, ...]:
    """The most common comparability key; a tie goes to the key of the newest run."""
    counts = Counter(comparability_key(fp) for _, fp in printed)
    newest = {comparability_key(fp): rid for rid, fp in sorted(printed, key=lambda r: r[0])}
    return max(counts, key=lambda k: (counts[k], newest[k]))
