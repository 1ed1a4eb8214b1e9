"""Parsing rules on small tables; the same readers run on real VLMEvalKit files in test_results_real.py."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from vlmevals.core.errors import VLMEvalFailure
from vlmevals.vlmevalkit.outputs import collect_metrics, count_rows, entry_error, flatten_table, pick_primary


def test_flatten_split_rows_and_pick_primary() -> None:
    df = pd.DataFrame({"split": ["dev", "test"], "Overall": [0.5, 0.25], "colour": [1.0, None]})
    flat = flatten_table(df)
    assert flat == {"split=dev|Overall": 0.5, "split=dev|colour": 1.0, "split=test|Overall": 0.25}
    assert pick_primary(flat, "Overall") == 0.5
    assert pick_primary(flat, "split=test|Overall") == 0.25
    assert pick_primary(flat, "missing") is None


def test_flatten_label_column_and_single_row() -> None:
    rows = flatten_table(pd.DataFrame({"Category": ["Overall", "color"], "acc": [75.0, 50.0]}))
    assert pick_primary(rows, "Overall") == 75.0
    assert flatten_table(pd.DataFrame({"Overall": [0.9]})) == {"Overall": 0.9}


@pytest.mark.parametrize(
    "entry, expected",
    [
        ({"status": "done"}, None),
        ({"status": "done", "error_message": "boom"}, "boom"),
        ({"status": "done", "error_message": ""}, "empty message"),
    ],
)
def test_entry_error(entry: dict, expected: str | None) -> None:
    got = entry_error(entry)
    assert (got is None) if expected is None else (expected in got)


def test_collect_metrics_failures(tmp_path: Path) -> None:
    kw = {"model": "M", "data": "D", "suffix": "_acc.csv", "key": "Overall"}
    with pytest.raises(VLMEvalFailure, match="no metric file"):
        collect_metrics(tmp_path, **kw)
    (tmp_path / "M_D_acc.csv").write_text("split,Overall\nnone,")
    with pytest.raises(VLMEvalFailure, match="no numeric values"):
        collect_metrics(tmp_path, **kw)
    (tmp_path / "M_D_acc.csv").write_text("split,Overall\nnone,0.4\n")
    with pytest.raises(VLMEvalFailure, match="metric key 'Nope' not found"):
        collect_metrics(tmp_path, **{**kw, "key": "Nope"})
    (tmp_path / "status.json").write_text(json.dumps({"datasets": {"D": {"status": "done", "error_message": "x"}}}))
    with pytest.raises(VLMEvalFailure, match="reported a failure"):
        collect_metrics(tmp_path, **kw)
    (tmp_path / "status.json").write_text("{truncated")
    with pytest.raises(VLMEvalFailure, match="not valid JSON"):
        collect_metrics(tmp_path, **kw)


def test_count_rows_agrees_with_pandas(tmp_path: Path) -> None:
    """The csv-module count (queue does not import pandas) matches pandas on quoting, blank lines and images."""
    tsv = tmp_path / "d.tsv"
    big = "x" * 300_000  # a base64 image is far over csv's default field size limit
    tsv.write_text(f'index\tquestion\timage\n0\t"two\nlines"\t{big}\n\n1\tplain\t{big}\n2\t"a ""q"""\t-\n')
    assert count_rows(tsv) == 3 == len(pd.read_csv(tsv, sep="\t", usecols=[0]))
    header_only = tmp_path / "h.tsv"
    header_only.write_text("index\tquestion\n")
    assert count_rows(header_only) == 0
    empty = tmp_path / "e.tsv"
    empty.write_text("")
    assert count_rows(empty) is None
    assert count_rows(tmp_path / "missing.tsv") is None
