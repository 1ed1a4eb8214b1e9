"""Offline demo benchmarks in VLMEvalKit's TSV format.

The service must be demonstrable and testable without downloads, so these small benchmarks are generated
locally, deterministically (seeded from the benchmark name, never from time), byte-identical on every call.
Each one is a name VLMEvalKit does not know, placed in ``$LMUData/{name}.tsv``; a ``--config`` data entry
``{"class": <dataset_class>, "dataset": <name>}`` makes VLMEvalKit load it without an md5 check and score it
offline with ``--judge exact_matching``.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import random
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw

IMAGE_SIZE = 32
DEFAULT_N = 20

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 170, 60),
    "blue": (30, 60, 220),
    "yellow": (235, 215, 30),
}
SHAPES = ("circle", "square", "triangle", "cross")
LETTERS = ("A", "B", "C", "D")


@dataclass(frozen=True)
class DemoBenchmark:
    """How the service runs and reads one demo benchmark (mirrors what VLMEvalKit writes for it)."""

    name: str
    dataset_class: str  # class for the --config data entry
    metric_suffix: str  # file {model}_{name}{metric_suffix} in the model's output folder
    metric_key: str  # column of the metric file holding the primary score
    scale: int  # 1: fraction in [0, 1]; 100: percentage
    higher_is_better: bool
    columns: tuple[str, ...]
    make_row: Callable[..., dict[str, str]]  # (rng, i, draw=_draw) -> row; training data passes its own drawer

    def config_entry(self) -> dict[str, str]:
        """The ``data`` entry of a VLMEvalKit ``--config`` file."""
        return {"class": self.dataset_class, "dataset": self.name}


def _draw(shape: str, colour: str) -> str:
    """A 32x32 PNG of one coloured shape, centred, base64 encoded (as VLMEvalKit's ``image`` column expects)."""
    return draw_shape(shape, COLOURS[colour], (6, 6, IMAGE_SIZE - 7, IMAGE_SIZE - 7))


def draw_shape(shape: str, fill: tuple[int, int, int], box: tuple[int, int, int, int]) -> str:
    """One shape in ``box`` (x0, y0, x1, y1) on white; the training data draws it elsewhere than the benchmarks."""
    img = Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE), (255, 255, 255))
    d = ImageDraw.Draw(img)
    x0, y0, x1, y1 = box
    if shape == "circle":
        d.ellipse(box, fill=fill)
    elif shape == "square":
        d.rectangle(box, fill=fill)
    elif shape == "triangle":
        d.polygon([((x0 + x1 + 1) // 2, y0), (x1, y1), (x0, y1)], fill=fill)
    else:
        mx, my = (x0 + x1 + 1) // 2, (y0 + y1 + 1) // 2
        d.rectangle((mx - 3, y0, mx + 3, y1), fill=fill)
        d.rectangle((x0, my - 3, x1, my + 3), fill=fill)
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=False, compress_level=6)
    return base64.b64encode(buf.getvalue()).decode("ascii")


Drawer = Callable[[str, str], str]


def _mcq_row(rng: random.Random, i: int, draw: Drawer = _draw) -> dict[str, str]:
    shape, colour = rng.choice(SHAPES), rng.choice(list(COLOURS))
    if i % 2 == 0:
        category, question, right, pool = "colour", "What colour is the shape?", colour, list(COLOURS)
    else:
        category, question, right, pool = "shape", "Which shape is shown?", shape, list(SHAPES)
    rng.shuffle(pool)
    row = {"index": str(i), "image": draw(shape, colour), "question": question}
    row.update(dict(zip(LETTERS, pool, strict=True)))
    row["answer"] = LETTERS[pool.index(right)]
    row["category"] = category
    return row


def _vqa_row(rng: random.Random, i: int, draw: Drawer = _draw) -> dict[str, str]:
    shape, colour = rng.choice(SHAPES), rng.choice(list(COLOURS))
    if i % 2 == 0:
        category, question, right = "colour", "What colour is the shape?", colour
    else:
        category, question, right = "shape", "What shape is shown?", shape
    # Ten annotator answers as in VQAv2: the default VQA score gives 0 to a single reference answer.
    answers = [right] * 10
    return {
        "index": str(i),
        "image": draw(shape, colour),
        "question": question,
        "answer": repr(answers),
        "category": category,
    }


def _yorn_row(rng: random.Random, i: int, draw: Drawer = _draw) -> dict[str, str]:
    shape, colour = rng.choice(SHAPES), rng.choice(list(COLOURS))
    yes = i % 2 == 0
    if i % 4 < 2:
        category = "colour"
        asked = colour if yes else rng.choice([c for c in COLOURS if c != colour])
        question = f"Is the shape {asked}? Please answer yes or no."
    else:
        category = "shape"
        asked = shape if yes else rng.choice([s for s in SHAPES if s != shape])
        question = f"Is the shape a {asked}? Please answer yes or no."
    return {
        "index": str(i),
        "image": draw(shape, colour),
        "question": question,
        "answer": "Yes" if yes else "No",
        "category": category,
    }


DEMO_BENCHMARKS: dict[str, DemoBenchmark] = {
    b.name: b
    for b in (
        DemoBenchmark(
            "DEMO_SHAPES_MCQ",
            "CustomMCQDataset",
            "_acc.csv",
            "Overall",
            1,
            True,
            ("index", "image", "question", "A", "B", "C", "D", "answer", "category"),
            _mcq_row,
        ),
        DemoBenchmark(
            "DEMO_COLORS_VQA",
            "ImageVQADataset",
            "_acc.csv",
            "Overall",
            100,
            True,
            ("index", "image", "question", "answer", "category"),
            _vqa_row,
        ),
        DemoBenchmark(
            "DEMO_SHAPES_YORN",
            "ImageYORNDataset",
            "_score.csv",
            "Overall",
            100,
            True,
            ("index", "image", "question", "answer", "category"),
            _yorn_row,
        ),
    )
}


def _tsv_field(value: str) -> str:
    """Values are generated without tabs/newlines; refuse anything that would break the TSV."""
    if any(ch in value for ch in "\t\n\r"):
        raise ValueError(f"unsafe TSV value: {value!r}")
    return value


def render_benchmark(name: str, n: int | None = None) -> bytes:
    """The TSV bytes of benchmark ``name`` with ``n`` questions (seeded from the name only)."""
    spec = DEMO_BENCHMARKS[name]
    count = DEFAULT_N if n is None else n
    if count <= 0:
        raise ValueError("n must be positive")
    rng = random.Random(zlib.crc32(f"{name}:{count}".encode()))
    lines = ["\t".join(spec.columns)]
    for i in range(count):
        row = spec.make_row(rng, i)
        lines.append("\t".join(_tsv_field(row[c]) for c in spec.columns))
    return ("\n".join(lines) + "\n").encode("utf-8")


def write_benchmark(name: str, lmu_dir: Path, n: int | None = None) -> Path:
    """Write ``{lmu_dir}/{name}.tsv``; idempotent (same bytes, file untouched when already identical)."""
    data = render_benchmark(name, n)
    lmu_dir = Path(lmu_dir)
    lmu_dir.mkdir(parents=True, exist_ok=True)
    path = lmu_dir / f"{name}.tsv"
    if path.exists() and path.read_bytes() == data:
        return path
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)  # atomic: a concurrent VLMEvalKit never reads half a file
    return path


def md5_of(path: Path) -> str:
    """md5 hex digest of a file (VLMEvalKit identifies dataset TSVs by md5)."""
    h = hashlib.md5()
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
