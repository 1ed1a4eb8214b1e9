"""A fast reader for the per-sample .xlsx files VLMEvalKit writes, equal to `pandas.read_excel` on them.

Why: `pd.read_excel` (openpyxl) costs ~6 ms for a 20-row file, almost all of it loading the workbook's styles
and building a DataFrame; a backfill of 10,000 results spent a minute there. This reads the first worksheet's
XML and the shared strings directly (~0.4 ms) and reproduces what pandas would hand `parse_records`: cell
values as openpyxl converts them, then pandas' per-column NA and type inference. Where that inference is not
certain to come out the same (a column of numbers stored as text, booleans, dates, styled numbers, odd
headers), `read_rows` returns None and the caller reads the file with pandas: the fast path only answers
when it would give the same records.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
import zipfile
from typing import Any

_NS = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_REL_NS = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
_PKG_REL = "{http://schemas.openxmlformats.org/package/2006/relationships}"
_COORD = re.compile(r"^([A-Z]{1,3})$")  # a cell reference's column letters
# pandas' default NA strings (pandas._libs.parsers.STR_NA_VALUES), "" included
NA_STRINGS = frozenset(
    {"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>", "N/A",
     "NA", "NULL", "NaN", "None", "n/a", "nan", "null"}
)  # fmt: skip
_NUMERIC_WORDS = frozenset({"inf", "infinity", "nan"})
_EXACT_INT = 2**53  # beyond this an int column with a gap would be rounded by pandas' float64


class Unsupported(Exception):
    """Something the fast path does not reproduce exactly: read the file with pandas instead."""


def _text(node: ET.Element | None) -> str:
    """openpyxl's Text.content: the plain <t> and the rich-text runs' <t>, phonetic runs left out."""
    if node is None:
        return ""
    parts = [node.findtext(f"{_NS}t") or ""]
    parts += [r.findtext(f"{_NS}t") or "" for r in node.findall(f"{_NS}r")]
    return "".join(parts)


def _first_sheet(z: zipfile.ZipFile) -> str:
    book = ET.fromstring(z.read("xl/workbook.xml"))
    sheet = book.find(f"{_NS}sheets/{_NS}sheet")
    if sheet is None:
        raise Unsupported("no worksheet")
    rid = sheet.get(f"{_REL_NS}id")
    rels = ET.fromstring(z.read("xl/_rels/workbook.xml.rels"))
    target = next((r.get("Target") for r in rels.iter(f"{_PKG_REL}Relationship") if r.get("Id") == rid), None)
    if not target:
        raise Unsupported("worksheet relation missing")
    return target.lstrip("/") if target.startswith("/") else f"xl/{target}"


def _column(letters: str) -> int:
    n = 0
    for ch in letters:
        n = n * 26 + ord(ch) - 64
    return n - 1


def _number(raw: str, styled: bool) -> int | float:
    """openpyxl's _cast_number, then pandas' int-if-integral (styled numbers may be dates: not here)."""
    if styled:
        raise Unsupported("styled number (maybe a date)")
    value: int | float = float(raw) if ("." in raw or "e" in raw or "E" in raw) else int(raw)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise Unsupported("non-finite number")
        if value.is_integer():
            value = int(value)
    if abs(value) > _EXACT_INT:
        raise Unsupported("number beyond float64's exact integers")
    return value


def _cell(c: ET.Element, strings: list[str]) -> Any:
    kind = c.get("t", "n")
    if kind == "inlineStr":
        return _text(c.find(f"{_NS}is"))
    raw = c.findtext(f"{_NS}v") or None
    if raw is None or kind == "e":
        return None
    if kind == "n":
        return _number(raw, c.get("s", "0") != "0")
    if kind == "s":
        return strings[int(raw)]
    if kind == "str":
        return raw
    if kind == "b":
        return raw == "1"
    raise Unsupported(f"cell type {kind!r}")  # d (ISO dates)


def _position(ref: str | None, next_col: int, columns: dict[str, int]) -> int:
    """A cell's column from its reference ("C7" -> 2; cached per reference), or the next one without it."""
    if not ref:
        return next_col
    col = columns.get(ref)
    if col is None:
        coord = _COORD.match(ref)
        if coord is None:
            raise Unsupported(f"cell reference {ref!r}")
        col = columns[ref] = _column(coord.group(1))
    if col < next_col:
        raise Unsupported("cells out of order")
    return col


def _grid(sheet: ET.Element, strings: list[str]) -> list[list[Any]]:
    rows: list[list[Any]] = []
    columns: dict[str, int] = {}
    for row in sheet.iter(f"{_NS}row"):
        at = int(row.get("r") or len(rows) + 1) - 1
        while len(rows) < at:
            rows.append([])
        cells: list[Any] = []
        for c in row.iter(f"{_NS}c"):
            ref = c.get("r")
            col = _position(ref.rstrip("0123456789") if ref else None, len(cells), columns)
            if col > len(cells):
                cells += [None] * (col - len(cells))
            cells.append(_cell(c, strings))
        rows.append(cells)
    return rows


def read_grid(path: str) -> list[list[Any]]:
    """The first worksheet's cells as openpyxl reads them (None for empty cells); Unsupported otherwise."""
    try:
        with zipfile.ZipFile(path) as z:
            names = set(z.namelist())
            strings: list[str] = []
            if "xl/sharedStrings.xml" in names:
                sst = ET.fromstring(z.read("xl/sharedStrings.xml"))
                strings = [_text(si).replace("x005F_", "") for si in sst.iter(f"{_NS}si")]
            sheet = ET.fromstring(z.read(_first_sheet(z)))
    except (zipfile.BadZipFile, KeyError, ET.ParseError, ValueError, OSError) as err:
        raise Unsupported(f"{type(err).__name__}: {err}") from err
    return _grid(sheet, strings)


def _surely_text(s: str) -> bool:
    """A string pandas' numeric inference cannot take for a number (Python's float() is the laxer parser)."""
    try:
        float(s)
    except ValueError:
        return s.strip().lower().lstrip("+-") not in _NUMERIC_WORDS and bool(s.strip())
    return False


def _infer(values: list[Any]) -> list[Any]:
    """pandas' per-column step: NA strings to None; booleans stay booleans in a full column and become 1.0/0.0
    beside gaps; a column of numbers-as-text, or booleans mixed with other values, is not reproduced."""
    out = [None if v is None or (isinstance(v, str) and v in NA_STRINGS) else v for v in values]
    bools = sum(isinstance(v, bool) for v in out)
    if bools:
        if bools == len(out):
            return out
        if bools + out.count(None) < len(out):
            raise Unsupported("booleans mixed with other values")
        return [None if v is None else float(v) for v in out]
    texts = [v for v in out if isinstance(v, str)]
    if texts and not any(_surely_text(v) for v in texts):
        raise Unsupported("a column pandas would convert from text to numbers")
    return out


def _header(grid: list[list[Any]]) -> list[str]:
    """The column names, where pandas would take them as they are (no Unnamed: n, x.1, parsed names)."""
    header = list(grid[0])
    while header and header[-1] is None:
        header.pop()
    if not header or len(set(header)) < len(header):
        raise Unsupported("empty or duplicate column names")
    if any(not isinstance(h, str) or not h or h in NA_STRINGS for h in header):
        raise Unsupported("a column name pandas would not take as it is")
    width = len(header)
    if any(len(r) > width and any(v is not None for v in r[width:]) for r in grid[1:]):
        raise Unsupported("rows wider than the header (pandas would take the first column as an index)")
    return header


def read_rows(path: str) -> tuple[list[str], list[dict[str, Any]]] | None:
    """(columns, rows as dicts) as `pd.read_excel(path).to_dict("records")` gives them, None where the fast
    path cannot promise that (the caller then uses pandas)."""
    try:
        grid = read_grid(path)
        while grid and all(v is None for v in grid[-1]):
            grid.pop()  # pandas trims trailing empty rows
        if not grid:
            return None
        header = _header(grid)
        body = grid[1:]
        columns = [_infer([r[i] if i < len(r) else None for r in body]) for i in range(len(header))]
    except Unsupported:
        return None
    return header, [dict(zip(header, vals, strict=True)) for vals in zip(*columns, strict=True)]
