"""Reading what VLMEvalKit wrote: status.json, metric files, predictions and partial results.

VLMEvalKit exits 0 even when a (model, dataset) pair failed, so these readers are where a run's truth is
decided. Every metric cell is kept (flattened `row=...|column` keys) so per-category breakdowns survive.
"""

from __future__ import annotations

import csv
import json
import math
import pickle
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vlmevals.core.constants import WORKER_STDERR_LOG
from vlmevals.core.errors import VLMEvalFailure
from vlmevals.vlmevalkit import metric_csv

if TYPE_CHECKING:
    import pandas as pd  # imported where a table is read: ~0.5 s at every task start otherwise

STATUS_FILE = "status.json"
LABEL_COLUMNS = ("split", "Split", "category", "Category", "l2-category", "type")


def load_status(pred_root: Path) -> dict[str, Any]:
    path = pred_root / STATUS_FILE
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise VLMEvalFailure(
            f"{path} is not valid JSON ({err}); VLMEvalKit may have been killed while writing it. Rerun the evaluation."
        ) from err
    return data if isinstance(data, dict) else {}


def dataset_entry(status: dict[str, Any], data: str) -> dict[str, Any]:
    entry = (status.get("datasets") or {}).get(data)
    return entry if isinstance(entry, dict) else {}


def entry_error(entry: dict[str, Any]) -> str | None:
    """The failure recorded for one dataset, if any (an empty error_message still means failure)."""
    if "error_message" in entry and entry["error_message"] is not None:
        msg = str(entry["error_message"]).strip()
        return msg or f"VLMEvalKit recorded an error with an empty message (see {WORKER_STDERR_LOG})"
    return None


def _number(v: Any) -> float | None:
    if isinstance(v, bool):
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) or math.isinf(f) else f


def flatten_table(df: pd.DataFrame) -> dict[str, float]:
    """Every numeric cell of a metric table, keyed `label=value|column` (or `column` for one-row tables)."""
    import pandas as pd

    if df.empty:
        return {}
    label = next((c for c in LABEL_COLUMNS if c in df.columns), None)
    if label is None and pd.api.types.is_object_dtype(df.dtypes.iloc[0]):
        label = str(df.columns[0])
    out: dict[str, float] = {}
    for i, row in df.reset_index(drop=True).iterrows():
        for col in df.columns:
            if col == label:
                continue
            val = _number(row[col])
            if val is None:
                continue
            if label is not None:
                key = f"{label}={row[label]}|{col}"
            elif len(df) == 1:
                key = str(col)
            else:
                key = f"row={i}|{col}"
            out[key] = val
    return out


def read_metric_file(path: Path) -> dict[str, float]:
    """Parse a VLMEvalKit metric file (csv, xlsx or json) into flat metrics (a plain CSV without pandas)."""
    if path.suffix == ".csv":
        fast = _fast_csv(path)
        if fast is not None:
            if not fast:
                raise VLMEvalFailure(f"metric file {path} has no numeric values")
            return fast
    import pandas as pd

    try:
        if path.suffix == ".csv":
            df = pd.read_csv(path)
        elif path.suffix == ".xlsx":
            df = pd.read_excel(path)
        elif path.suffix == ".json":
            raw = json.loads(path.read_text())
            return {k: v for k, v in _flatten_json(raw).items() if v is not None}
        else:
            raise VLMEvalFailure(f"unsupported metric file type {path.name}")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, json.JSONDecodeError, ValueError) as err:
        raise VLMEvalFailure(f"metric file {path} is unreadable ({err})") from err
    flat = flatten_table(df)
    if not flat:
        raise VLMEvalFailure(f"metric file {path} has no numeric values")
    return flat


def _fast_csv(path: Path) -> dict[str, float] | None:
    """`metric_csv.flatten` of the file (None: read it with pandas, which also reports what is wrong)."""
    try:
        text = path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    return metric_csv.flatten(text, LABEL_COLUMNS)


def _flatten_json(obj: Any, prefix: str = "") -> dict[str, float | None]:
    if isinstance(obj, dict):
        out: dict[str, float | None] = {}
        for k, v in obj.items():
            out.update(_flatten_json(v, f"{prefix}|{k}" if prefix else str(k)))
        return out
    return {prefix: _number(obj)}


def pick_primary(metrics: dict[str, float], key: str) -> float | None:
    """Find the task's primary metric among flattened keys: exact, then `…|key`, then `label=key|…`."""
    if key in metrics:
        return metrics[key]
    for k, v in metrics.items():
        if k.endswith(f"|{key}"):
            return v
    for k, v in metrics.items():
        if k.split("|", 1)[0].split("=", 1)[-1] == key:
            return v
    return None


def metric_file(pred_root: Path, model: str, data: str, suffix: str) -> Path | None:
    exact = pred_root / f"{model}_{data}{suffix}"
    if exact.exists():
        return exact
    # judges insert their name: {model}_{data}_{judge}{suffix}
    candidates = sorted(pred_root.glob(f"{model}_{data}_*{suffix}"), key=lambda p: p.stat().st_mtime)
    return candidates[-1] if candidates else None


def prediction_file(pred_root: Path, model: str, data: str) -> Path | None:
    for ext in ("xlsx", "tsv", "json"):
        p = pred_root / f"{model}_{data}.{ext}"
        if p.exists():
            return p
    return None


def unreadable_prediction(pred_root: Path, model: str, data: str) -> str | None:
    """Why the prediction file cannot be read (corrupt, truncated by a full disk), or None if it reads fine.

    Checked when scoring produced nothing: VLMEvalKit then only says "Incomplete infer result"."""
    pred = prediction_file(pred_root, model, data)
    if pred is None:
        return None
    import pandas as pd

    try:
        if pred.suffix == ".xlsx":
            pd.read_excel(pred, nrows=1)
        elif pred.suffix == ".tsv":
            pd.read_csv(pred, sep="\t", nrows=1)
        else:
            json.loads(pred.read_text(encoding="utf-8"))
    except Exception as err:
        return (
            f"prediction file {pred.name} is unreadable ({type(err).__name__}: {str(err)[:200]}); it was "
            "damaged after inference. Trigger the evaluation again with reuse off to re-infer it"
        )
    return None


INFER_FAIL_MARKER = "Failed to obtain answer"  # what VLMEvalKit's API wrappers record when a request failed


def count_failed_answers(pred_root: Path, model: str, data: str) -> int:
    """Predictions that are VLMEvalKit's failure marker (the server refused or dropped the request)."""
    pred = prediction_file(pred_root, model, data)
    if pred is None or pred.suffix == ".json":
        return 0
    import pandas as pd

    table = pd.read_excel(pred) if pred.suffix == ".xlsx" else pd.read_csv(pred, sep="\t")
    if "prediction" not in table:
        return 0
    return int(table["prediction"].astype(str).str.startswith(INFER_FAIL_MARKER).sum())


def count_partial(pred_root: Path, model: str, data: str) -> int:
    """Samples answered so far: VLMEvalKit's per-rank pickles (saved every 10 items), the API models'
    checkpoint (saved as answers arrive) and predictions reused from an earlier attempt."""
    seen: set[str] = set()
    extra = [pred_root / f"{model}_{data}_PREV.pkl", pred_root / f"{model}_{data}_checkpoint.pkl"]
    for p in [*pred_root.glob(f"*_{data}.pkl"), *extra]:
        if not p.exists():
            continue
        try:
            with p.open("rb") as fh:
                obj = pickle.load(fh)
        except Exception:  # being written right now; the next tick reads it
            continue
        if isinstance(obj, dict):
            seen.update(str(k) for k, v in obj.items() if INFER_FAIL_MARKER not in str(v))
    return len(seen)


def count_rows(tsv: Path) -> int | None:
    """Data rows of a VLMEvalKit TSV (quoted fields may span lines; blank lines don't count), read with the csv
    module: `queue` calls this at every run, and importing pandas would cost it ~0.5 s."""
    if not tsv.exists():
        return None
    csv.field_size_limit(sys.maxsize)  # base64 images are far over the 128 KiB default
    try:
        with tsv.open(newline="", encoding="utf-8") as fh:
            rows = sum(1 for row in csv.reader(fh, delimiter="\t") if row)
    except (OSError, UnicodeDecodeError, csv.Error):
        return None
    return max(rows - 1, 0) if rows else None


@dataclass
class IngestResult:
    primary_metric: float | None
    metrics: dict[str, Any]
    metric_file: Path


def collect_metrics(pred_root: Path, *, model: str, data: str, suffix: str, key: str) -> IngestResult:
    """All metrics of one finished (model, dataset), or VLMEvalFailure naming what is missing."""
    entry = dataset_entry(load_status(pred_root), data)
    err = entry_error(entry)
    if err:
        raise VLMEvalFailure(f"VLMEvalKit reported a failure for {model} x {data}: {err}")
    mf = metric_file(pred_root, model, data, suffix)
    if mf is None:
        reason = entry.get("skip_reason")
        hint = f" (status.json skip_reason: {reason})" if reason else ""
        raise VLMEvalFailure(
            f"no metric file {model}_{data}*{suffix} in {pred_root}{hint}; check the task's "
            f"primary_metric_suffix and {WORKER_STDERR_LOG}"
        )
    table = read_metric_file(mf)
    primary = pick_primary(table, key)
    if primary is None:
        raise VLMEvalFailure(
            f"metric key {key!r} not found in {mf.name}; available: {', '.join(list(table)[:15])}. "
            "Fix the task's primary_metric_key."
        )
    return IngestResult(primary, metrics_record(table, mf.name, entry), mf)


def metrics_record(table: dict[str, float], file_name: str, entry: dict[str, Any]) -> dict[str, Any]:
    """A run's `metrics` column: the flat table, its file, and what status.json adds (pipeline and backfill)."""
    metrics: dict[str, Any] = {"table": table, "file": file_name}
    if isinstance(entry.get("metrics"), dict):
        metrics["status_json"] = entry["metrics"]
    for k in ("primary_metric", "judge_model"):
        if entry.get(k) is not None:
            metrics[k] = entry[k]
    return metrics
