"""The trained demo model: its training images are disjoint from the benchmarks', and it really learns."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import pytest
from PIL import Image
from vlmevals.devtools.demo import train as demo_train
from vlmevals.devtools.demo.benchmark import DEMO_BENCHMARKS, render_benchmark
from vlmevals.devtools.demo.train_data import answer_text, training_rows


def _pixels(b64: str) -> bytes:
    return Image.open(io.BytesIO(base64.b64decode(b64))).convert("RGB").tobytes()


def _benchmark_images(name: str, n: int) -> set[bytes]:
    lines = render_benchmark(name, n).decode().splitlines()
    col = lines[0].split("\t").index("image")
    return {_pixels(line.split("\t")[col]) for line in lines[1:]}


@pytest.mark.parametrize("name", sorted(DEMO_BENCHMARKS))
def test_training_images_are_disjoint_from_every_benchmark_image(name: str) -> None:
    bench = set().union(*(_benchmark_images(b, n) for b in DEMO_BENCHMARKS for n in (20, 200)))
    rows = training_rows(name, demo_train.PER_TASK)
    train = {_pixels(r["image"]) for r in rows}
    assert len(train) > demo_train.PER_TASK // 2  # varied, not one image repeated
    assert not train & bench
    assert {r["question"] for r in rows} >= {r["question"] for r in _rows(name)}  # the same questions are asked


def _rows(name: str) -> list[dict[str, str]]:
    lines = render_benchmark(name).decode().splitlines()
    cols = lines[0].split("\t")
    return [dict(zip(cols, line.split("\t"), strict=True)) for line in lines[1:]]


def test_answers_are_what_the_scorers_accept() -> None:
    assert answer_text("DEMO_SHAPES_MCQ", "C") == " C"
    assert answer_text("DEMO_COLORS_VQA", repr(["red"] * 10)) == " red"
    assert answer_text("DEMO_SHAPES_YORN", "Yes") == " yes"


@pytest.mark.e2e
def test_training_is_cached_and_the_last_checkpoint_beats_chance_and_step_0(tmp_path: Path) -> None:
    from vlmevals.devtools.demo.evaluate import score_checkpoint

    dirs = demo_train.train_checkpoints(tmp_path / "ckpt")
    assert sorted(dirs) == list(demo_train.STEPS)
    assert demo_train.is_current(tmp_path / "ckpt")
    weights = dirs[max(dirs)] / "model.safetensors"
    mtime = weights.stat().st_mtime_ns
    demo_train.train_checkpoints(tmp_path / "ckpt")
    assert weights.stat().st_mtime_ns == mtime  # cached: the content hash matched, nothing retrained

    name = "DEMO_COLORS_VQA"
    first = score_checkpoint(dirs[0], tmp_path / "eval0", (name,))[name]
    last = score_checkpoint(dirs[max(dirs)], tmp_path / "evalN", (name,))[name]
    chance = 25.0  # four colours or four shapes
    assert last >= 2 * chance, (first, last)
    assert last > first + 20, (first, last)
