"""Training examples for the demo model: the demo benchmarks' questions on images the benchmarks never show.

The model must learn the answer formats VLMEvalKit scores, so the prompts are built by VLMEvalKit itself (the
benchmark's dataset class ``build_prompt`` and DOCLING's default prompt builder, then the chat template), exactly
as at evaluation time. The images differ from every benchmark image: the shape is drawn at other positions and
sizes and with a jittered colour (the benchmarks draw it centred in the box (6, 6, 25, 25) with the pure colour).
"""

from __future__ import annotations

import ast
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vlmevals.devtools.demo.benchmark import COLOURS, DEMO_BENCHMARKS, IMAGE_SIZE, draw_shape
from vlmevals.vlmevalkit.quiet_import import import_quietly

BENCH_BOX = (6, 6, IMAGE_SIZE - 7, IMAGE_SIZE - 7)
TRAIN_SEED = 7001  # any seed: the images are disjoint from the benchmarks' by construction (tested)


@dataclass
class Example:
    input_ids: Any  # 1-D LongTensor
    pixel_values: Any  # (1, 1, 3, H, W)
    target: int  # the one answer token


def jittered_drawer(rng: random.Random) -> Any:
    """A drawer for ``make_row`` that never draws the benchmarks' box with their pure colour."""

    def draw(shape: str, colour: str) -> str:
        while True:
            size = rng.randint(15, 23)  # near the benchmarks' 19 px box, so a tiny model generalises
            x0, y0 = rng.randint(3, IMAGE_SIZE - 4 - size), rng.randint(3, IMAGE_SIZE - 4 - size)
            box = (x0, y0, x0 + size, y0 + size)
            if box != BENCH_BOX:
                break
        fill = tuple(max(0, min(255, c + rng.randint(-25, 25))) for c in COLOURS[colour])
        return draw_shape(shape, (fill[0], fill[1], fill[2]), box)

    return draw


def training_rows(name: str, n: int) -> list[dict[str, str]]:
    """``n`` rows in benchmark ``name``'s format, with training images."""
    spec = DEMO_BENCHMARKS[name]
    rng = random.Random(f"{TRAIN_SEED}:{name}")
    draw = jittered_drawer(random.Random(f"{TRAIN_SEED}:{name}:images"))
    return [spec.make_row(rng, i, draw=draw) for i in range(n)]


def answer_text(name: str, answer: str) -> str:
    """What the model must say (one token, after "Assistant:") for the row's ``answer`` column."""
    if DEMO_BENCHMARKS[name].dataset_class == "ImageVQADataset":
        return " " + str(ast.literal_eval(answer)[0])
    if DEMO_BENCHMARKS[name].dataset_class == "ImageYORNDataset":
        return " " + answer.lower()
    return " " + answer


def build_examples(processor: Any, work: Path, per_task: int) -> list[Example]:
    """Tokenised examples of all three demo tasks (VLMEvalKit reads the rows from ``work``/LMUData)."""
    lmu = work / "LMUData"
    lmu.mkdir(parents=True, exist_ok=True)
    before = os.environ.get("LMUData")
    os.environ["LMUData"] = str(lmu)  # read by VLMEvalKit when a dataset is instantiated
    try:
        examples: list[Example] = []
        for name in DEMO_BENCHMARKS:
            examples += _task_examples(processor, lmu, name, training_rows(name, per_task))
        return examples
    finally:  # `work` is temporary: nothing after the training may read datasets from it
        if before is None:
            os.environ.pop("LMUData", None)
        else:
            os.environ["LMUData"] = before


def _task_examples(processor: Any, lmu: Path, name: str, rows: list[dict[str, str]]) -> list[Example]:
    vd = import_quietly("vlmeval.dataset")
    DOCLING = import_quietly("vlmeval.vlm.granite_docling").DOCLING

    spec = DEMO_BENCHMARKS[name]
    train_name = f"{name}_TRAIN"
    lines = ["\t".join(spec.columns)] + ["\t".join(r[c] for c in spec.columns) for r in rows]
    (lmu / f"{train_name}.tsv").write_text("\n".join(lines) + "\n")
    dataset = getattr(vd, spec.dataset_class)(dataset=train_name)
    out = []
    for i in range(len(dataset.data)):
        line = dataset.data.iloc[i]
        content, images = DOCLING.build_prompt_default(None, dataset.build_prompt(line))
        text = processor.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True)
        enc = processor(text=text, images=images, return_tensors="pt")
        target = processor.tokenizer(answer_text(name, str(line["answer"])), add_special_tokens=False)["input_ids"]
        if len(target) != 1:
            raise ValueError(f"{name}: answer {line['answer']!r} is not one token")
        out.append(Example(enc["input_ids"][0], enc["pixel_values"], target[0]))
    return out
