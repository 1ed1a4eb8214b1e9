"""A fast path for VLMEvalKit's metric CSVs (`_acc.csv`, `_score.csv`), equal to `flatten_table(pd.read_csv())`.

Why: pandas costs ~0.7 ms per tiny metric file (parser set-up, a DataFrame, iterrows); backfill reads one per
result, 10,000 of them in a big work dir. VLMEvalKit writes these files with `to_csv(quoting=QUOTE_ALL)`: a
header and a few rows of labels and numbers. `flatten` answers for files of that shape and returns None for
anything where pandas' inference might differ (ragged or blank lines, odd quoting, padded cells, booleans,
numbers Python reads but pandas may not, numeric labels, duplicate or empty names): the caller then uses
pandas. Numbers: pandas' default float parser and Python's float() agree (checked on 300,000 decimal strings).
"""

from __future__ import annotations

import re
from functools import lru_cache

_FIELD = re.compile(r'"([^"\n]*)"|([^",\n]*)')
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_BOOLS = frozenset({"True", "TRUE", "true", "False", "FALSE", "false"})
_NUMERIC_WORDS = frozenset({"inf", "infinity", "nan"})
NA_STRINGS = frozenset(
    {"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>", "N/A",
     "NA", "NULL", "NaN", "None", "n/a", "nan", "null"}
)  # fmt: skip


class _Declined(Exception):
    pass


@lru_cache(maxsize=1)
def _text_is_object() -> bool:
    """Whether pandas gives a text column the object dtype (pandas < 3) or its own string dtype (pandas 3),
    which decides if an unnamed first text column labels the rows (`flatten_table`)."""
    import pandas as pd

    return bool(pd.api.types.is_object_dtype(pd.Series(["a", None]).dtype))


def _fields(line: str) -> list[str]:
    out: list[str] = []
    pos = 0
    while True:
        m = _FIELD.match(line, pos)
        if m is None:
            raise _Declined
        cell = m.group(1) if m.group(1) is not None else m.group(2)
        if m.group(1) is None and cell != cell.strip():
            raise _Declined  # unquoted padding: pandas' numeric inference on it is not reproduced
        out.append(cell)
        pos = m.end()
        if pos == len(line):
            return out
        if line[pos] != ",":
            raise _Declined
        pos += 1


def _kind(cell: str) -> str:
    """na | number | text, as pandas' inference sees a cell; _Declined where it might not."""
    if cell in NA_STRINGS:
        return "na"
    if cell in _BOOLS or cell != cell.strip():
        raise _Declined
    if _NUMBER.match(cell):
        if len(cell) > 24:
            raise _Declined
        return "number"
    try:
        float(cell)
    except ValueError:
        if cell.lower().lstrip("+-") in _NUMERIC_WORDS:
            raise _Declined from None
        return "text"
    raise _Declined  # inf, 1_000, non-ASCII digits: Python takes them, pandas' parser may not


def _label(header: list[str], columns: list[list[str]], label_columns: tuple[str, ...]) -> int | None:
    kinds = [{_kind(c) for c in col} for col in columns]
    label = next((header.index(c) for c in label_columns if c in header), None)
    if label is None and columns and "text" in kinds[0] and _text_is_object():
        label = 0
    if label is not None and kinds[label] != {"text"}:
        raise _Declined  # a numeric or gapped label column: pandas would print it its own way
    return label


def _value(cell: str) -> float | None:
    if cell in NA_STRINGS:
        return None
    try:
        return float(cell)  # a text cell in a text column: flatten_table tries float() on it too
    except ValueError:
        return None


def flatten(text: str, label_columns: tuple[str, ...]) -> dict[str, float] | None:
    """`flatten_table(pd.read_csv(file))` for a simple metric CSV's text; None: let pandas read it."""
    if text.startswith("\ufeff") or "\r" in text:
        return None
    lines = text[:-1].split("\n") if text.endswith("\n") else text.split("\n")
    if not all(lines):
        return None  # blank lines: pandas skips them
    try:
        rows = [_fields(line) for line in lines]
        header, body = rows[0], rows[1:]
        if not all(header) or len(set(header)) < len(header) or any(len(r) != len(header) for r in body):
            return None
        columns = [[r[i] for r in body] for i in range(len(header))]
        label = _label(header, columns, label_columns)
    except _Declined:
        return None
    out: dict[str, float] = {}
    for i, row in enumerate(body):
        for j, col in enumerate(header):
            val = _value(row[j]) if j != label else None
            if val is None or val != val or val in (float("inf"), float("-inf")):
                continue
            if label is not None:
                key = f"{header[label]}={row[label]}|{col}"
            else:
                key = col if len(body) == 1 else f"row={i}|{col}"
            out[key] = val
    return out
