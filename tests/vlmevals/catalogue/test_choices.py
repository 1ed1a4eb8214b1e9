"""The trigger forms' choices file: written from the catalogue's tables, read without a database."""

from __future__ import annotations

from pathlib import Path

import pytest
from vlmevals.catalogue.choices import read_choices, write_choices
from vlmevals.db.engine import session_scope


@pytest.mark.integration
def test_written_from_the_tables_and_read_back(seeded, tmp_path: Path) -> None:
    target = tmp_path / "sub" / "choices.json"
    with session_scope(seeded) as s:
        assert write_choices(s, target) == target
    got = read_choices(target)
    assert "demo-shapes-mcq" in got["tasks"] and "demo-tiny-idefics3" in got["models"]
    assert got["tasks"] == sorted(got["tasks"]) and not list(tmp_path.glob("sub/.*.tmp"))


def test_a_missing_or_broken_file_falls_back_to_the_seed_names(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    for path in (tmp_path / "absent.json", broken):
        got = read_choices(path)
        assert "demo-shapes-mcq" in got["tasks"] and "demo-tiny-idefics3" in got["models"]
