"""The fast per-sample .xlsx reader gives exactly the records pandas' read_excel gives, or declines (None) and
read_records falls back to pandas: on VLMEvalKit's real files and on tables built to trip pandas' inference."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from vlmevals.results.samples import xlsx
from vlmevals.results.samples.parse import parse_frame, parse_records, pick_result_file, read_records

from tests.vlmeval_outputs import MODEL_NAME

FAST = {  # tables the fast path answers
    "plain": {"index": [0, 1, 2], "prediction": ["A", "B", "C"], "hit": [1, 0, 1], "category": ["x", "y", "x"]},
    "gaps": {"index": [0, 1, 2], "prediction": ["A", None, "C"], "hit": [1.0, math.nan, 0.5], "log": ["", "z", None]},
    "na_text": {"index": [0, 1, 2, 3], "prediction": ["NA", "None", "nan", "x"], "answer": ["n/a", "B", "#N/A", ""]},
    "mixed": {"index": [0, 1, 2], "answer": ["2", "A", 3], "score": [0.25, 1, 0]},
    "text": {"index": [0, 1], "question": ["  spaced  ", "line\nbreak _x000D_ x005F_ \u00e9\u4e2d"], "hit": [1, 1]},
    "str_index": {"index": ["a-1", "a-2", "a-1"], "prediction": ["A", "B", "C"], "hit": [1, 0, 1]},
    "bools": {"index": [0, 1], "score": [True, False]},
    "bools_gap": {"index": [0, 1, 2], "score": [True, None, False]},
    "floats": {"index": [0, 1], "eval_score": [0.1 + 0.2, 1e-7], "extra_col": [12345.5, -0.0]},
}
DECLINED = {  # tables where pandas' inference is not reproduced: the reader says None
    "numbers_as_text": {"index": [0, 1], "answer": ["2", "03"], "hit": [1, 0]},
    "bools_mixed": {"index": [0, 1, 2], "hit": [True, 2, "x"]},
    "dates": {"index": [0, 1], "when": pd.to_datetime(["2026-01-01", "2026-01-02"])},
    "duplicate_header": {"index": [0], "a": [1], "b": [2]},
}


def _write(tmp_path: Path, name: str, table: dict[str, Any], engine: str) -> Path:
    path = tmp_path / f"{name}-{engine}.xlsx"
    df = pd.DataFrame(table)
    if name == "duplicate_header":
        df.columns = ["index", "a", "a"]
    df.to_excel(path, index=False, engine=engine)
    return path


def _pandas(path: Path) -> list[Any]:
    return parse_frame(pd.read_excel(path))


@pytest.mark.parametrize("engine", ["xlsxwriter", "openpyxl"])
@pytest.mark.parametrize("name", list(FAST))
def test_fast_reader_equals_pandas(tmp_path: Path, name: str, engine: str) -> None:
    path = _write(tmp_path, name, FAST[name], engine)
    fast = xlsx.read_rows(str(path))
    assert fast is not None, "the fast path answers this table"
    assert parse_records(*fast) == _pandas(path)
    assert fast[1] and len(fast[1]) == len(FAST[name]["index"])


@pytest.mark.parametrize("name", list(DECLINED))
def test_fast_reader_declines_what_it_cannot_reproduce(tmp_path: Path, name: str) -> None:
    path = _write(tmp_path, name, DECLINED[name], "xlsxwriter")
    assert xlsx.read_rows(str(path)) is None
    assert read_records(path) == _pandas(path), "read_records falls back to pandas"


@pytest.mark.integration  # `real` starts VLMEvalKit when its cached output tree is missing
def test_fast_reader_on_vlmevalkit_files(real: dict[str, Any]) -> None:
    md: Path = real["cases"]["ok"]["model_dir"]
    files = sorted(md.glob(f"{MODEL_NAME}_*.xlsx"))
    assert len(files) >= 6, "predictions and the three scored per-sample files"
    for path in files:
        fast = xlsx.read_rows(str(path))
        assert fast is not None, path.name
        assert parse_records(*fast) == _pandas(path), path.name


def test_not_an_xlsx_is_declined_and_pandas_raises(tmp_path: Path) -> None:
    bad = tmp_path / "m_D_exact_matching_result.xlsx"
    bad.write_bytes(b"placeholder")
    assert xlsx.read_rows(str(bad)) is None
    with pytest.raises(ValueError):
        read_records(bad)


def test_pick_result_file_follows_the_globs() -> None:
    names = {"m_D.xlsx": 1, "m_D_gpt_result.xlsx": 5, "m_D_judge_results.xlsx": 9, "m_D_circ_result.xlsx": 20}
    assert pick_result_file(names, "m", "D") == "m_D_judge_results.xlsx", "newest globbed, circular ones skipped"
    assert pick_result_file({**names, "m_D_auxmatch.xlsx": 0}, "m", "D") == "m_D_auxmatch.xlsx"
    assert pick_result_file({"m_D_result.xlsx": 3, "m_D.tsv": 1}, "m", "D") == "m_D.tsv", "no judge name: no match"
    assert pick_result_file({"m_E.xlsx": 1}, "m", "D") is None
