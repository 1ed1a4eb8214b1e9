"""Per-sample results: read VLMEvalKit's per-sample files, store them in `eval_samples`, summarise them.

Why rows in PostgreSQL (not a Parquet file per run): the API filters (category, wrong/failed) and pages them
with SQL, comparisons join two runs on (run_id, sample_index) through the primary key, re-ingesting is one
transaction (delete + COPY) so a rerun can never leave half a run, and there is nothing else to back up.
A sample row is ~0.3-2 KB (measured by bench/samples_bench.py): a 10,000-sample benchmark is a few MB per run,
thousands of runs tens of GB, which PostgreSQL handles; the leaderboard never reads this table (the summary
lives on eval_runs: samples_total, samples_failed, ci_low, ci_high).

Failed samples: a prediction holding VLMEvalKit's failure marker ("Failed to obtain answer", the API wrappers'
`fail_msg` and `INFER_FAIL_MSG`) or a judge that gave up ("Failed to predict, thus randomly generate one",
a judge API failure in the log) is `failed`. VLMEvalKit scores those as wrong, so two scores are kept:
`official` (failed count as 0, what VLMEvalKit reports) and `valid_only` (failed samples excluded from the
denominator). The confidence interval is the valid-only one: it describes the model, not the API's outages.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, delete, func, insert, select
from sqlalchemy.orm import Session

from vlmevals.db.engine import get_engine
from vlmevals.db.models import EvalSample
from vlmevals.results import stats

log = logging.getLogger(__name__)

INFER_FAIL_MARKERS = ("Failed to obtain answer",)  # vlmeval.smp.file.INFER_FAIL_MSG, inference.FAIL_MSG, fail_msg
JUDGE_FAIL_MARKERS = ("Failed to obtain answer", "Failed to predict, thus randomly generate one")
SCORE_COLUMNS = ("hit", "eval_score", "score")
CATEGORY_COLUMNS = ("category", "l2-category", "l2_category", "subtask", "task", "type", "split")
LOG_COLUMNS = ("log", "judge_log", "eval_log")
DROP_COLUMNS = {"image", "image_path", "index", "question", "answer", "prediction", "hit", "eval_score", "score"}
MAX_TEXT = 32_000
MAX_EXTRA_VALUE = 2_000
OUTCOMES = ("all", "right", "wrong", "failed")
COPY_COLUMNS = ("run_id", "sample_index", "category", "question", "answer", "prediction", "score", "failed", "extra")


@dataclass
class SampleRecord:
    sample_index: str
    category: str | None
    question: str | None
    answer: str | None
    prediction: str | None
    score: float | None
    failed: bool
    extra: dict[str, Any] | None = None


@dataclass
class SampleSummary:
    """What a run's samples say: counts, the official and valid-only score and the valid-only interval."""

    total: int
    failed: int
    scored: int
    source_file: str
    official: float | None = None  # failed counted as 0, on the task's scale (what VLMEvalKit reports)
    valid_only: float | None = None  # failed excluded, on the task's scale
    interval: stats.Interval | None = None  # 95 % CI of valid_only, on the task's scale
    scale: float = 1.0
    categories: dict[str, dict[str, float | int | None]] = field(default_factory=dict)

    def as_metrics(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "failed": self.failed,
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
            "ci_low": self.interval.low if self.interval else None,
            "ci_high": self.interval.high if self.interval else None,
        }


def result_file(pred_root: Path, model: str, data: str) -> Path | None:
    """The most informative per-sample file VLMEvalKit wrote for (model, data), or None.

    Order: MCQ `_{judge}_result.xlsx` (hit), VQA `_results.xlsx` (eval_score), Y/N `_auxmatch.xlsx` (score),
    other `_*_result(s).xlsx`, then the prediction file itself (no scores).
    """
    prefix = f"{model}_{data}"
    exact = [
        pred_root / f"{prefix}_exact_matching_result.xlsx",
        pred_root / f"{prefix}_results.xlsx",
        pred_root / f"{prefix}_auxmatch.xlsx",
    ]
    for p in exact:
        if p.exists():
            return p
    globbed = [
        p
        for pat in (f"{prefix}_*_result.xlsx", f"{prefix}_*_results.xlsx")
        for p in pred_root.glob(pat)
        if "vanilla" not in p.name and "circ" not in p.name
    ]
    if globbed:
        return max(globbed, key=lambda p: p.stat().st_mtime)
    for ext in ("xlsx", "tsv"):
        p = pred_root / f"{prefix}.{ext}"
        if p.exists():
            return p
    return None


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


def parse_frame(df: Any) -> list[SampleRecord]:
    """Rows of a VLMEvalKit per-sample DataFrame as records (first occurrence of an index wins)."""
    if "index" not in df.columns:
        raise ValueError(f"per-sample file has no 'index' column (columns: {', '.join(map(str, df.columns))})")
    score_col = next((c for c in SCORE_COLUMNS if c in df.columns), None)
    cat_col = next((c for c in CATEGORY_COLUMNS if c in df.columns), None)
    log_cols = [c for c in LOG_COLUMNS if c in df.columns]
    extra_cols = [c for c in df.columns if c not in DROP_COLUMNS and c != cat_col]
    out: list[SampleRecord] = []
    seen: set[str] = set()
    for row in df.to_dict("records"):
        idx = _text(row.get("index"))
        if idx is None or idx in seen:
            continue
        seen.add(idx)
        pred = _text(row.get("prediction"))
        failed = _has_marker(pred, INFER_FAIL_MARKERS) or any(
            _has_marker(row.get(c), JUDGE_FAIL_MARKERS) for c in log_cols
        )
        extra = {
            str(c): (t if len(t) <= MAX_EXTRA_VALUE else t[:MAX_EXTRA_VALUE] + " …")
            for c in extra_cols
            if (t := _text(row.get(c))) is not None
        }
        out.append(
            SampleRecord(
                sample_index=idx,
                category=_text(row.get(cat_col)) if cat_col else None,
                question=_text(row.get("question")),
                answer=_text(row.get("answer")),
                prediction=pred,
                score=_score(row.get(score_col)) if score_col else None,
                failed=failed,
                extra=extra or None,
            )
        )
    return out


def read_samples(pred_root: Path, model: str, data: str) -> tuple[list[SampleRecord], Path] | None:
    """Per-sample records of (model, data) under pred_root, with the file they came from; None if no file."""
    import pandas as pd

    path = result_file(pred_root, model, data)
    if path is None:
        return None
    df = pd.read_excel(path) if path.suffix == ".xlsx" else pd.read_csv(path, sep="\t")
    return parse_frame(df), path


def summarise(records: Sequence[SampleRecord], source_file: str, scale: float = 1.0) -> SampleSummary:
    failed = sum(r.failed for r in records)
    valid = [r.score for r in records if not r.failed and r.score is not None]
    summary = SampleSummary(total=len(records), failed=failed, scored=len(valid), source_file=source_file, scale=scale)
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
        vs = [r.score for r in rs if not r.failed and r.score is not None]
        summary.categories[cat] = {
            "total": len(rs),
            "failed": sum(r.failed for r in rs),
            "valid_only": scale * sum(vs) / len(vs) if vs else None,
        }
    return summary


def store(engine: Engine | None, run_id: int, records: Iterable[SampleRecord]) -> int:
    """Replace run_id's samples with `records` in one transaction (COPY on psycopg 3, else executemany)."""
    rows = [
        (
            run_id,
            r.sample_index,
            r.category,
            r.question,
            r.answer,
            r.prediction,
            r.score,
            r.failed,
            json.dumps(r.extra) if r.extra else None,
        )
        for r in records
    ]
    eng = engine or get_engine()
    with eng.begin() as conn:
        conn.execute(delete(EvalSample).where(EvalSample.run_id == run_id))
        raw = conn.connection.driver_connection
        if type(raw).__module__.startswith("psycopg") and hasattr(raw, "cursor") and hasattr(raw.cursor(), "copy"):
            with raw.cursor() as cur, cur.copy(f"COPY eval_samples ({', '.join(COPY_COLUMNS)}) FROM STDIN") as cp:
                for row in rows:
                    cp.write_row(row)
        elif rows:
            conn.execute(
                insert(EvalSample),
                [
                    dict(zip(COPY_COLUMNS, r, strict=True)) | {"extra": json.loads(r[-1]) if r[-1] else None}
                    for r in rows
                ],
            )
    return len(rows)


def ingest(
    engine: Engine | None, run_id: int, pred_root: Path, model: str, data: str, scale: float = 1.0
) -> SampleSummary | None:
    """Read, store and summarise one run's samples (idempotent: a rerun replaces them). None: no file."""
    got = read_samples(pred_root, model, data)
    if got is None:
        log.info("no per-sample file for %s x %s in %s", model, data, pred_root)
        return None
    records, path = got
    store(engine, run_id, records)
    summary = summarise(records, path.name, scale)
    log.info("ingested %s samples of run %s from %s (%s failed)", summary.total, run_id, path.name, summary.failed)
    return summary


def outcome_filter(outcome: str) -> Any:
    """SQL condition for an outcome: right (full marks), wrong (below full marks, not failed), failed."""
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}, got {outcome!r}")
    if outcome == "failed":
        return EvalSample.failed.is_(True)
    if outcome == "wrong":
        return EvalSample.failed.is_(False) & (func.coalesce(EvalSample.score, 0) < 1)
    if outcome == "right":
        return EvalSample.failed.is_(False) & (EvalSample.score >= 1)
    return None


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
    rows = session.execute(
        select(EvalSample.category, func.count())
        .where(EvalSample.run_id == run_id)
        .group_by(EvalSample.category)
        .order_by(EvalSample.category)
    ).all()
    return {c if c is not None else "": int(n) for c, n in rows}


def scores_of(session: Session, run_id: int) -> dict[str, tuple[float | None, bool, str | None]]:
    """sample_index -> (score, failed, category) of one run, for comparisons."""
    rows = session.execute(
        select(EvalSample.sample_index, EvalSample.score, EvalSample.failed, EvalSample.category).where(
            EvalSample.run_id == run_id
        )
    ).all()
    return {i: (s, f, c) for i, s, f, c in rows}


def ingest_for_run(
    engine: Engine | None, run_id: int, pred_root: Path, model: str, data: str, metrics: dict[str, Any]
) -> dict[str, Any]:
    """The ingest_metrics hook: store the run's samples, add their summary to `metrics["samples"]` and return
    eval_runs' summary columns. Never raises: the official metrics must be recorded even if a per-sample file
    is unreadable (the reason goes to `metrics["samples_error"]`)."""
    from vlmevals.db.engine import session_scope
    from vlmevals.db.models import EvalRun

    try:
        with session_scope(engine) as s:
            run = s.get(EvalRun, run_id)
            scale = float(run.task.metric_scale) if run is not None else 1.0
        summary = ingest(engine, run_id, pred_root, model, data, scale=scale)
    except Exception as err:  # a per-sample parser problem must not lose the run's official score
        log.exception("per-sample ingestion failed for run %s", run_id)
        metrics["samples_error"] = f"{type(err).__name__}: {err}"
        return {}
    if summary is None:
        return {}
    metrics["samples"] = summary.as_metrics()
    return summary.run_columns()


# --- images from the dataset TSV (VLMEvalKit keeps them base64-encoded in the `image` column) ----------------

_MAGIC = ((b"\x89PNG", "image/png"), (b"\xff\xd8", "image/jpeg"), (b"GIF8", "image/gif"), (b"BM", "image/bmp"))


def image_mime(data: bytes) -> str:
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return next((m for magic, m in _MAGIC if data.startswith(magic)), "application/octet-stream")


@lru_cache(maxsize=2)
def _tsv_images(path: str, mtime_ns: int) -> dict[str, str]:
    """index -> image cell of a TSV (cached per file version; read once, only two columns)."""
    import pandas as pd

    cols = pd.read_csv(path, sep="\t", nrows=0).columns
    if "index" not in cols or "image" not in cols:
        return {}
    df = pd.read_csv(path, sep="\t", usecols=["index", "image"], dtype=str, keep_default_na=False)
    return dict(zip(df["index"].astype(str), df["image"], strict=True))


def sample_image(tsv: Path, index: str, n: int = 0) -> tuple[bytes, str]:
    """The n-th image of sample `index` in a VLMEvalKit TSV: bytes and MIME type.

    Handles VLMEvalKit's conventions: a short cell naming another row's index (shared images) and a cell holding
    a Python list of base64 strings (multi-image samples). Raises NotFoundError naming what is missing.
    """
    import ast
    import base64
    import binascii

    from vlmevals.core.errors import NotFoundError

    if not tsv.exists():
        raise NotFoundError(f"dataset file {tsv} is missing; put the TSV in LMUData to see images")
    images = _tsv_images(str(tsv), tsv.stat().st_mtime_ns)
    if not images:
        raise NotFoundError(f"{tsv.name} has no 'image' column (images may be stored as paths); no image to show")
    cell = images.get(str(index))
    for _ in range(3):  # follow VLMEvalKit's short references to another row's image
        if cell is not None and len(cell) <= 64 and cell in images:
            cell = images[cell]
    if not cell:
        raise NotFoundError(f"sample {index!r} has no image in {tsv.name}")
    parts = [cell]
    if cell.startswith("["):
        try:
            parts = [str(p) for p in ast.literal_eval(cell)]
        except (ValueError, SyntaxError):
            parts = [cell]
    if not 0 <= n < len(parts):
        raise NotFoundError(f"sample {index!r} has {len(parts)} image(s); n must be 0..{len(parts) - 1}")
    try:
        data = base64.b64decode(parts[n], validate=False)
    except (binascii.Error, ValueError) as err:
        raise NotFoundError(f"image of sample {index!r} in {tsv.name} is not base64 ({err})") from err
    return data, image_mime(data)
