"""The metric-CSV fast path gives exactly what pandas gives (`flatten_table(pd.read_csv())`), or declines and
read_metric_file falls back to pandas: VLMEvalKit's QUOTE_ALL files, and files built to trip pandas' inference."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from vlmevals.core.errors import VLMEvalFailure
from vlmevals.vlmevalkit import metric_csv
from vlmevals.vlmevalkit.outputs import LABEL_COLUMNS, flatten_table, read_metric_file

FAST = {
    "mcq": '"split","Overall","colour","shape"\n"none","0.25","0.3","0.2"\n',
    "vqa": '"Overall","colour","shape"\n"20.0","40.0","0.0"\n',
    "rows": '"category","acc","n"\n"a","0.6666666666666666","3"\n"b","NA","4"\n"a","1e-3",""\n',
    "unlabelled_rows": "x,y\n1,2\n3,0.30000000000000004\n",
    "text_first": '"name","acc"\n"alpha","0.5"\n"beta","x"\n',
    "no_newline": '"Overall"\n"12.5"',
    "header_only": '"Overall","x"\n',
}
DECLINED = {
    "bools": '"split","ok"\n"none","True"\n',
    "padded": "split,acc\nnone, 0.5\n",
    "blank_line": '"Overall"\n\n"1"\n',
    "numeric_label": '"split","acc"\n"1","0.5"\n"2","0.7"\n',
    "inf": '"Overall"\n"inf"\n',
    "escaped_quote": '"split","acc"\n"a ""b""","0.5"\n',
    "duplicate": '"a","a"\n"1","2"\n',
    "crlf": '"Overall"\r\n"1"\r\n',
    "ragged": '"a","b"\n"1"\n',
}


def _pandas(path: Path) -> dict[str, float]:
    return flatten_table(pd.read_csv(path))


@pytest.mark.parametrize("name", list(FAST))
def test_fast_path_equals_pandas(tmp_path: Path, name: str) -> None:
    path = tmp_path / f"m_{name}_acc.csv"
    path.write_text(FAST[name])
    got = metric_csv.flatten(FAST[name], LABEL_COLUMNS)
    assert got is not None, "the fast path answers this file"
    assert got == _pandas(path)
    assert list(got) == list(_pandas(path)), "same keys in the same order"


@pytest.mark.parametrize("name", list(DECLINED))
def test_fast_path_declines_and_pandas_reads(tmp_path: Path, name: str) -> None:
    assert metric_csv.flatten(DECLINED[name], LABEL_COLUMNS) is None
    path = tmp_path / f"m_{name}_acc.csv"
    path.write_text(DECLINED[name], newline="")
    try:
        expected = _pandas(path)
    except Exception as err:
        with pytest.raises((VLMEvalFailure, type(err))):
            read_metric_file(path)
        return
    if expected:
        assert read_metric_file(path) == expected


def test_empty_and_truncated_files_are_reported(tmp_path: Path) -> None:
    header_only = tmp_path / "h_acc.csv"
    header_only.write_text(FAST["header_only"])
    with pytest.raises(VLMEvalFailure, match="no numeric values"):
        read_metric_file(header_only)
    truncated = tmp_path / "t_acc.csv"
    truncated.write_text(FAST["mcq"][:18])
    with pytest.raises(VLMEvalFailure):
        read_metric_file(truncated)
