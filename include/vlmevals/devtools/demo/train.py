"""Train the demo model deterministically on CPU and save checkpoints, so the demo shows scores climbing.

The untrained demo model answers at chance. Here a slightly larger Idefics3 (two layers, width 64) learns the
three demo tasks from generated images disjoint from the benchmarks (train_data.py) and is saved at a few steps as
full HF model folders that VLMEvalKit's DOCLING wrapper loads like the untrained demo model. Fixed seeds, one
thread and deterministic algorithms make the checkpoints bit-identical on every machine run; a content hash of
the recipe skips training when the checkpoints on disk are current.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from vlmevals.devtools.demo import model as demo_model
from vlmevals.devtools.demo.model import MARKER, Recipe, build_untrained
from vlmevals.devtools.demo.train_data import Example, build_examples

CKPT_DIR_NAME = "demo-tiny-idefics3-ckpt"
STEPS = (0, 100, 400)
RECIPE = Recipe(hidden=64, layers=2, heads=4, spaced_words=True)
PER_TASK = 256
BATCH = 32
LR = 1e-2  # peak; linear warm-up over WARMUP steps, then linear decay to zero at the last step
WARMUP = 20
TRAIN_VERSION = 1  # bump to retrain checkpoints already on disk


def fingerprint(steps: tuple[int, ...] = STEPS) -> str:
    """The recipe's content hash: these sources, the settings above and the library versions."""
    here = Path(__file__).parent
    h = hashlib.sha256(demo_model._fingerprint().encode())
    for name in ("train.py", "train_data.py"):
        h.update((here / name).read_bytes())
    h.update(f"{TRAIN_VERSION}|{steps}|{RECIPE}|{PER_TASK}|{BATCH}|{LR}|{WARMUP}".encode())
    return h.hexdigest()[:16]


def checkpoint_dirs(root: Path, steps: tuple[int, ...] = STEPS) -> dict[int, Path]:
    return {s: Path(root) / f"step-{s}" for s in steps}


def is_current(root: Path, steps: tuple[int, ...] = STEPS) -> bool:
    """True when every checkpoint folder exists and was written by this recipe."""
    want = fingerprint(steps)
    for path in checkpoint_dirs(root, steps).values():
        try:
            if json.loads((path / MARKER).read_text()).get("fingerprint") != want:
                return False
        except (OSError, ValueError):
            return False
    return True


def train_checkpoints(root: Path, steps: tuple[int, ...] = STEPS) -> dict[int, Path]:
    """Train and save ``{root}/step-{N}`` for each N in ``steps`` (skipped when current); returns the folders."""
    import torch

    root = Path(root)
    if is_current(root, steps):
        return checkpoint_dirs(root, steps)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    try:
        with tempfile.TemporaryDirectory(prefix="demo-train-") as work:
            _train(root, steps, Path(work))
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(False)
    return checkpoint_dirs(root, steps)


def _train(root: Path, steps: tuple[int, ...], work: Path) -> None:
    import torch

    model, processor = build_untrained(RECIPE)
    t0 = time.monotonic()
    examples = build_examples(processor, work, PER_TASK)
    print(f"examples {time.monotonic() - t0:.1f}s", flush=True)
    torch.manual_seed(demo_model.SEED)
    model.train()
    with torch.enable_grad():  # importing VLMEvalKit may have switched gradients off globally
        _loop(model, processor, examples, root, steps)


def _loop(model: Any, processor: Any, examples: list[Example], root: Path, steps: tuple[int, ...]) -> None:
    import torch

    order = random.Random(demo_model.SEED)
    optim = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.0)
    last = max(steps)
    sched = torch.optim.lr_scheduler.LambdaLR(optim, lambda s: min((s + 1) / WARMUP, (last - s) / (last - WARMUP)))
    for step in range(max(steps) + 1):
        if step in steps:
            _save(model, processor, root / f"step-{step}", fingerprint(steps), step)
        if step == max(steps):
            break
        loss = _loss(model, order.sample(examples, BATCH), processor.tokenizer.pad_token_id)
        optim.zero_grad()
        loss.backward()
        optim.step()
        sched.step()
        if step % 50 == 0:
            print(f"step {step} loss {loss.item():.3f}", flush=True)


def _loss(model: Any, batch: list[Example], pad_id: int) -> Any:
    """Cross-entropy of the one answer token at each prompt's last position (right padding keeps positions)."""
    import torch

    width = max(len(e.input_ids) for e in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, e in enumerate(batch):
        ids[row, : len(e.input_ids)] = e.input_ids
        mask[row, : len(e.input_ids)] = 1
    pixels = torch.cat([e.pixel_values for e in batch])
    logits = model(input_ids=ids, attention_mask=mask, pixel_values=pixels).logits
    last = torch.tensor([len(e.input_ids) - 1 for e in batch])
    targets = torch.tensor([e.target for e in batch])
    return torch.nn.functional.cross_entropy(logits[torch.arange(len(batch)), last], targets)


def _save(model: Any, processor: Any, out: Path, fp: str, step: int) -> None:
    """One checkpoint as a full HF folder, written next to its place and moved in whole."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.eval()
    model.save_pretrained(tmp, safe_serialization=True)
    processor.save_pretrained(tmp)
    model.train()
    (tmp / MARKER).write_text(json.dumps({"fingerprint": fp, "class": "DOCLING", "step": step}) + "\n")
    if out.exists():
        shutil.rmtree(out)
    tmp.replace(out)


def main() -> None:
    """``python -m vlmevals.devtools.demo.train [ROOT]``: train, printing wall and CPU seconds."""
    import sys

    from vlmevals.core.settings import get_settings

    root = Path(sys.argv[1]) if len(sys.argv) > 1 else get_settings().models_dir / CKPT_DIR_NAME
    wall, cpu = time.monotonic(), time.process_time()
    dirs = train_checkpoints(root)
    print(
        f"checkpoints {sorted(dirs)} in {root}: {time.monotonic() - wall:.1f} s wall, "
        f"{time.process_time() - cpu:.1f} s CPU"
    )


if __name__ == "__main__":
    main()
