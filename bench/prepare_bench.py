"""Preparation before the GPU slot, measured on local stand-ins that speak the real protocols:

(a) dataset download throughput from a local HTTP dataset host (md5 verified, atomic rename), `--dataset-mb` MB;
(b) the GPU-slot hold time of one evaluation (queue -> inference) of the demo model served by a fake Hub throttled
    to `--hub-mbps` MB/s, its weights padded to `--weights-mb` MB (an unused tensor in model.safetensors, so
    transformers downloads it like real weights), side by side in one run: with prefetch (the queue step downloads
    the snapshot, inference runs with the Hub offline) and without (VLMEvalKit downloads inside the slot).

Runs the pipeline steps in-process on a private PostgreSQL (no Airflow: the steps are what the DAG calls).
Prints one JSON line.

Usage: .venv/bin/python bench/prepare_bench.py [--dataset-mb 200] [--weights-mb 100] [--hub-mbps 20]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit, free_port, log, machine

REPO = "bench-org/tiny-idefics3-padded"


def padded_model(src: Path, dst: Path, mb: int) -> Path:
    """The demo model with an extra unused tensor of `mb` MB in model.safetensors."""
    import shutil

    import torch
    from safetensors.torch import load_file, save_file

    shutil.copytree(src, dst)
    tensors = load_file(str(src / "model.safetensors"))
    tensors["bench_padding"] = torch.zeros(mb * 1024 * 1024 // 4, dtype=torch.float32)
    save_file(tensors, str(dst / "model.safetensors"), metadata={"format": "pt"})
    return dst


@contextlib.contextmanager
def timed_leases(holds: list[float]) -> Iterator[None]:
    """Record how long each inference holds its GPU lease."""
    from vlmevals.gpu import leases

    original = leases.leased

    @contextlib.contextmanager
    def leased(*a: Any, **kw: Any) -> Iterator[Any]:
        with original(*a, **kw) as lease:
            t0 = time.monotonic()
            try:
                yield lease
            finally:
                holds.append(time.monotonic() - t0)

    leases.leased = leased
    try:
        yield
    finally:
        leases.leased = original


def dataset_throughput(mb: int, lmu: Path) -> dict[str, Any]:
    from vlmevals.vlmevalkit.download import Source, fetch

    from tests.doubles.dataset_host import dataset_host

    line = b"0\t" + b"x" * 1000 + b"\tA\n"
    body = b"index\tquestion\tanswer\n" + line * (mb * 1024 * 1024 // len(line))
    md5 = hashlib.md5(body).hexdigest()
    with dataset_host() as host:
        url = host.add("/utils/BENCH_BIG.tsv", body)
        t0 = time.monotonic()
        got = fetch(Source(url, md5), lmu / "BENCH_BIG.tsv")
        secs = time.monotonic() - t0
    (lmu / "BENCH_BIG.tsv").unlink()
    return {"bytes": got.bytes, "seconds": round(secs, 2), "MB_per_s": round(got.bytes / 1e6 / secs, 1)}


def one_eval(engine: Any, name: str, hf_home: Path, prefetch: bool) -> dict[str, Any]:
    from vlmevals.pipeline import prepare, steps
    from vlmevals.vlmevalkit import hub

    os.environ["HF_HOME"] = str(hf_home)
    hub._online_cache.clear()
    holds: list[float] = []
    saved = (prepare.weights, hub.offline_model)
    if not prefetch:  # what happened before: VLMEvalKit fetches the weights itself, inside the slot
        prepare.weights = lambda *a, **k: None
        hub.offline_model = lambda model, settings: (model, {})
    try:
        t0 = time.monotonic()
        info = steps.queue_step(
            engine,
            {"task": "bench-mcq", "model": name},
            dag_id="eval_run",
            dag_run_id=f"bench__{time.time_ns()}",
            run_type="manual",
            user=None,
        )
        queued = time.monotonic() - t0
        with timed_leases(holds):
            steps.inference_step(engine, info["eval_run_id"], 1)
        steps.scoring_step(engine, info["eval_run_id"], 1)
        steps.ingest_step(engine, info["eval_run_id"])
    finally:
        prepare.weights, hub.offline_model = saved
    return {"queue_s": round(queued, 2), "gpu_slot_hold_s": round(holds[0], 2)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset-mb", type=int, default=200)
    ap.add_argument("--weights-mb", type=int, default=100)
    ap.add_argument("--hub-mbps", type=float, default=20.0)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="prepare-bench-"))
    port = free_port()
    os.environ.update(
        {
            "DATABASE_URL": f"postgresql+psycopg://evals@127.0.0.1:{port}/postgres",
            "LMUData": str(tmp / "LMUData"),
            "VLMEVAL_OUTPUTS": str(tmp / "outputs"),
            "EVALS_MODELS_DIR": str(tmp / "models"),
            "EVALS_GPUS": "none",
            "NO_PROXY": "127.0.0.1,localhost",
        }
    )
    (tmp / "LMUData").mkdir()
    from vlmevals.db.engine import get_engine, session_scope, upgrade
    from vlmevals.db.models import Model, Task
    from vlmevals.devtools.demo.benchmark import write_benchmark
    from vlmevals.devtools.demo.model import DEMO_MODEL_SPEC, build_demo_model
    from vlmevals.devtools.localpg import LocalPostgres

    from tests.doubles.fake_hub import fake_hub

    pg = LocalPostgres(tmp / "pgdata", port=port)
    pg.start()
    try:
        upgrade(os.environ["DATABASE_URL"])
        engine = get_engine(os.environ["DATABASE_URL"])
        log(f"dataset download, {args.dataset_mb} MB")
        dataset = dataset_throughput(args.dataset_mb, tmp / "LMUData")
        write_benchmark("DEMO_SHAPES_MCQ", tmp / "LMUData")
        model = padded_model(build_demo_model(tmp / "models" / "demo"), tmp / "padded", args.weights_mb)
        with fake_hub(rate_bps=args.hub_mbps * 1e6) as fake:
            os.environ["HF_ENDPOINT"] = fake.endpoint
            fake.push_folder(REPO, model)
            spec = {**DEMO_MODEL_SPEC(model), "model_path": REPO}
            with session_scope(engine) as s:
                s.add(
                    Task(
                        name="bench-mcq",
                        display_name="B",
                        vlmeval_data="DEMO_SHAPES_MCQ",
                        vlmeval_dataset_class="CustomMCQDataset",
                    )
                )
                for name in ("with-prefetch", "without-prefetch"):
                    s.add(Model(name=name, display_name=name, vlmeval_model="BenchTiny", model_spec=spec, gpus=1))
            log("evaluation with prefetch")
            with_pf = one_eval(engine, "with-prefetch", tmp / "hf-a", prefetch=True)
            log("evaluation without prefetch")
            without = one_eval(engine, "without-prefetch", tmp / "hf-b", prefetch=False)
        emit(
            {
                "bench": "prepare",
                "dataset_download": dataset,
                "weights_mb": args.weights_mb,
                "hub_MB_per_s": args.hub_mbps,
                "with_prefetch": with_pf,
                "without_prefetch": without,
                "gpu_slot_saved_s": round(without["gpu_slot_hold_s"] - with_pf["gpu_slot_hold_s"], 2),
                "machine": machine(),
            }
        )
    finally:
        get_engine.cache_clear()
        pg.stop(mode="fast")
        if not os.environ.get("KEEP_BENCH_FILES"):
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
