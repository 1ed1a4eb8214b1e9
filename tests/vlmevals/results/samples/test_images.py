"""Sample images from a dataset TSV: VLMEvalKit's base64 cells, shared-image references and multi-image lists."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from vlmevals.core.errors import NotFoundError
from vlmevals.devtools.demo.benchmark import write_benchmark
from vlmevals.results.samples.images import sample_image


def test_sample_image_from_real_tsv(tmp_path: Path) -> None:
    """The demo benchmark's TSV, the very file VLMEvalKit reads (written here: no VLMEvalKit run needed)."""
    tsv = write_benchmark("DEMO_SHAPES_MCQ", tmp_path / "LMUData")
    data, mime = sample_image(tsv, "3")
    assert mime == "image/png" and data.startswith(b"\x89PNG")
    with pytest.raises(NotFoundError, match="no image"):
        sample_image(tsv, "999")
    with pytest.raises(NotFoundError, match="missing"):
        sample_image(tmp_path / "nope.tsv", "0")
    png = base64.b64encode(data).decode()
    multi = tmp_path / "M.tsv"
    multi.write_text("index\timage\tquestion\n0\t" + png + "\tq\n1\t0\tq\n2\t['" + png + "', '" + png + "']\tq\n")
    assert sample_image(multi, "1")[0] == data, "a short cell refers to another row's image"
    assert sample_image(multi, "2", 1)[0] == data
    with pytest.raises(NotFoundError, match="has 2 image"):
        sample_image(multi, "2", 2)
