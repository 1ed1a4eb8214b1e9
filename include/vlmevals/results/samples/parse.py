"""Read VLMEvalKit's per-sample files into records: which file to read, its columns, failure markers.

Failed samples: a prediction holding VLMEvalKit's failure marker ("Failed to obtain answer", the API wrappers'
`fail_msg` and `INFER_FAIL_MSG`) or a judge that gave up ("Failed to predict, thus randomly generate one",
a judge API failure in the log) is `failed`; see vlmevals.results.samples.summary for how they are scored.
A failed judge (and not a failed prediction) also makes it `judge_failed`; so does VLMEvalKit's exact-matching
fallback marker when the caller knows the judge was unreachable (VLMEvalKit's probe failed, so it matched
without the judge and guessed the rest): those samples were never judged, not answered wrong.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vlmevals.results.samples import xlsx

INFER_FAIL_MARKERS = ("Failed to obtain answer",)  # vlmeval.smp.file.INFER_FAIL_MSG, inference.FAIL_MSG, fail_msg
JUDGE_FAIL_MARKERS = ("Failed to obtain answer", "Failed to predict, thus randomly generate one")
JUDGE_SKIPPED_MARKERS = ("Failed in Prefetch, no GPT-based answer matching",)  # exact matching gave up
SCORE_COLUMNS = ("hit", "eval_score", "score")
CATEGORY_COLUMNS = ("category", "l2-category", "l2_category", "subtask", "task", "type", "split")
LOG_COLUMNS = ("log", "judge_log", "eval_log")
DROP_COLUMNS = {"image", "image_path", "index", "question", "answer", "prediction", "hit", "eval_score", "score"}
MAX_TEXT = 32_000
MAX_EXTRA_VALUE = 2_000


@dataclass
class SampleRecord:
    """One row of a per-sample file, as stored in eval_samples."""

    sample_index: str
    category: str | None
    question: str | None
    answer: str | None
    prediction: str | None
    score: float | None
    failed: bool
    extra: dict[str, Any] | None = None
    judge_failed: bool = False  # the judge failed on it (then `failed` too): not the model's fault


_GLOBBED_ENDS = ("_result.xlsx", "_results.xlsx")


def pick_result_file(files: Mapping[str, int], model: str, data: str) -> str | None:
    """The most informative per-sample file among `files` (name -> mtime_ns) for (model, data), or None.

    Order: MCQ `_{judge}_result.xlsx` (hit), VQA `_results.xlsx` (eval_score), Y/N `_auxmatch.xlsx` (score),
    the newest other `_*_result(s).xlsx`, then the prediction file itself (no scores). Backfill passes the
    listing it already has, so choosing costs no stat() or glob per result.
    """
    prefix = f"{model}_{data}"
    for name in (f"{prefix}_exact_matching_result.xlsx", f"{prefix}_results.xlsx", f"{prefix}_auxmatch.xlsx"):
        if name in files:
            return name
    globbed = [  # the globs {prefix}_*_result.xlsx and {prefix}_*_results.xlsx
        n
        for n in files
        if n.startswith(f"{prefix}_")
        and any(n.endswith(end) and len(n) >= len(prefix) + 1 + len(end) for end in _GLOBBED_ENDS)
        and "vanilla" not in n
        and "circ" not in n
    ]
    if globbed:
        return max(globbed, key=lambda n: files[n])
    return next((n for n in (f"{prefix}.xlsx", f"{prefix}.tsv") if n in files), None)


def result_file(pred_root: Path, model: str, data: str) -> Path | None:
    """`pick_result_file` over the files of `pred_root` (links followed, as VLMEvalKit's readers do)."""
    files: dict[str, int] = {}
    try:
        with os.scandir(pred_root) as it:
            for e in it:
                if e.name.startswith(f"{model}_{data}") and e.is_file():
                    files[e.name] = e.stat().st_mtime_ns
    except FileNotFoundError:
        return None
    name = pick_result_file(files, model, data)
    return pred_root / name if name else None


def _text(v: Any) -> str | None:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    s = str(v).replace("\x00", "")
    return s if len(s) <= MAX_TEXT else s[:MAX_TEXT] + " …[truncated]"


def _score(v: Any) -> float | None:
    if v is None or (isinstance(v, str) and not v.strip()):
        return None
    if isinstance(v, str):
        low = v.strip().lower()
        if low in ("true", "false"):
            return 1.0 if low == "true" else 0.0
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) or math.isinf(f) else f


def _has_marker(v: Any, markers: Sequence[str]) -> bool:
    return isinstance(v, str) and any(m in v for m in markers)


@dataclass(frozen=True)
class _Columns:
    """Which columns of a per-sample file hold the score, the category, judge logs and extras."""

    score: str | None
    category: str | None
    logs: list[str]
    extra: list[str]

    @classmethod
    def of(cls, columns: Sequence[Any]) -> _Columns:
        category = next((c for c in CATEGORY_COLUMNS if c in columns), None)
        return cls(
            score=next((c for c in SCORE_COLUMNS if c in columns), None),
            category=category,
            logs=[c for c in LOG_COLUMNS if c in columns],
            extra=[c for c in columns if c not in DROP_COLUMNS and c != category],
        )


def _record(row: dict[Any, Any], idx: str, cols: _Columns, judge_unreachable: bool = False) -> SampleRecord:
    pred = _text(row.get("prediction"))
    markers = JUDGE_FAIL_MARKERS + JUDGE_SKIPPED_MARKERS if judge_unreachable else JUDGE_FAIL_MARKERS
    infer_failed = _has_marker(pred, INFER_FAIL_MARKERS)
    judge_failed = not infer_failed and any(_has_marker(row.get(c), markers) for c in cols.logs)
    failed = infer_failed or judge_failed
    extra = {
        str(c): (t if len(t) <= MAX_EXTRA_VALUE else t[:MAX_EXTRA_VALUE] + " …")
        for c in cols.extra
        if (t := _text(row.get(c))) is not None
    }
    return SampleRecord(
        sample_index=idx,
        category=_text(row.get(cols.category)) if cols.category else None,
        question=_text(row.get("question")),
        answer=_text(row.get("answer")),
        prediction=pred,
        score=_score(row.get(cols.score)) if cols.score else None,
        failed=failed,
        extra=extra or None,
        judge_failed=judge_failed,
    )


def parse_records(
    columns: Sequence[Any], rows: Iterable[dict[Any, Any]], judge_unreachable: bool = False
) -> list[SampleRecord]:
    """Rows of a per-sample table (as `DataFrame.to_dict("records")` gives them) as records; the first
    occurrence of an index wins. `judge_unreachable`: see the module docstring."""
    if "index" not in columns:
        raise ValueError(f"per-sample file has no 'index' column (columns: {', '.join(map(str, columns))})")
    cols = _Columns.of(list(columns))
    out: list[SampleRecord] = []
    seen: set[str] = set()
    for row in rows:
        idx = _text(row.get("index"))
        if idx is None or idx in seen:
            continue
        seen.add(idx)
        out.append(_record(row, idx, cols, judge_unreachable))
    return out


def parse_frame(df: Any, judge_unreachable: bool = False) -> list[SampleRecord]:
    """Rows of a VLMEvalKit per-sample DataFrame as records (first occurrence of an index wins)."""
    rows = df.to_dict("records") if "index" in df.columns else []
    return parse_records(list(df.columns), rows, judge_unreachable)


def read_records(path: Path, judge_unreachable: bool = False) -> list[SampleRecord]:
    """The records of one per-sample file: .xlsx through the fast reader where it gives what pandas would
    (see `xlsx`), else pandas."""
    if path.suffix == ".xlsx":
        fast = xlsx.read_rows(str(path))
        if fast is not None:
            return parse_records(*fast, judge_unreachable=judge_unreachable)
    import pandas as pd

    df = pd.read_excel(path) if path.suffix == ".xlsx" else pd.read_csv(path, sep="\t")
    return parse_frame(df, judge_unreachable)


def read_samples(
    pred_root: Path, model: str, data: str, judge_unreachable: bool = False
) -> tuple[list[SampleRecord], Path] | None:
    """Per-sample records of (model, data) under pred_root, with the file they came from; None if no file."""
    path = result_file(pred_root, model, data)
    if path is None:
        return None
    return read_records(path, judge_unreachable), path
