"""The demo model learns: train its checkpoints (timed, wall and CPU seconds, with the machine load), then score
each checkpoint on the three demo benchmarks with VLMEvalKit directly and print the table (0-100; chance is 25
for the MCQ and the VQA, 50 for yes/no).

Usage: .venv/bin/python bench/demo_learning_bench.py [--root DIR]   (default: a fresh temporary folder)
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", type=Path, default=None, help="checkpoint folder (kept; cached when current)")
    args = ap.parse_args()
    from vlmevals.devtools.demo.benchmark import DEMO_BENCHMARKS
    from vlmevals.devtools.demo.evaluate import score_checkpoint
    from vlmevals.devtools.demo.train import train_checkpoints

    work = Path(tempfile.mkdtemp(prefix="demo-learning-"))
    root = args.root or work / "ckpt"
    load0 = os.getloadavg()[0]
    wall, cpu = time.monotonic(), time.process_time()
    dirs = train_checkpoints(root)
    print(
        f"training: {time.monotonic() - wall:.1f} s wall, {time.process_time() - cpu:.1f} s CPU "
        f"(load {load0:.1f} -> {os.getloadavg()[0]:.1f}, {os.cpu_count()} cores)"
    )
    names = tuple(DEMO_BENCHMARKS)
    print(f"{'step':>6} " + " ".join(f"{n:>17}" for n in names) + f" {'average':>8}")
    for step, path in sorted(dirs.items()):
        t0 = time.monotonic()
        scores = score_checkpoint(path, work / f"eval-{step}", names)
        avg = sum(scores.values()) / len(scores)
        cells = " ".join(f"{scores[n]:>17.1f}" for n in names)
        print(f"{step:>6} {cells} {avg:>8.1f}   ({time.monotonic() - t0:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
