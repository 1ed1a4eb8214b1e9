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


CHANCE = {"DEMO_SHAPES_MCQ": 25.0, "DEMO_COLORS_VQA": 25.0, "DEMO_SHAPES_YORN": 50.0}  # 4 options, 4 colours, yes/no


def _average(scores: dict[str, float]) -> float:
    return sum(scores.values()) / len(scores)


@pytest.mark.e2e
def test_training_is_cached_and_the_scores_climb_with_the_steps(tmp_path: Path) -> None:
    """What the README's demo table claims, on any machine: exact figures differ between CPUs, the climb does not."""
    from vlmevals.devtools.demo.evaluate import score_checkpoints

    dirs = demo_train.train_checkpoints(tmp_path / "ckpt")
    assert sorted(dirs) == list(demo_train.STEPS) == [0, 100, 400]
    assert demo_train.is_current(tmp_path / "ckpt")
    weights = dirs[max(dirs)] / "model.safetensors"
    mtime = weights.stat().st_mtime_ns
    demo_train.train_checkpoints(tmp_path / "ckpt")
    assert weights.stat().st_mtime_ns == mtime  # cached: the content hash matched, nothing retrained

    scores = score_checkpoints({f"step{s}": d for s, d in dirs.items()}, tmp_path / "eval", tuple(CHANCE))
    avg = {s: _average(scores[f"step{s}"]) for s in dirs}
    assert avg[0] < avg[100] < avg[400], scores
    assert avg[400] > _average(CHANCE) + 10, scores  # chance averages 33.3
