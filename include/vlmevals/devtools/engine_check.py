"""A real `transformers serve` through the managed-process runner (vlmevals.serving.process), on the demo model:
started in its own environment (scripts/setup_engines.sh), ready on its health route, one chat completion with a
base64 image answered as JSON with `usage`, optionally VLMEvalKit's OpenAI-compatible client (LMDeployAPI,
`--base-url`) on a few demo questions, then stopped leaving no process. Prints the figures as JSON.

Not in the test suite: building the engine's environment takes minutes (torch 2.14.1 + transformers 5.23.0, 5.7 GB).

    python -m vlmevals.devtools.engine_check [--vlmevalkit N]
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from vlmevals.core.settings import Settings, get_settings
from vlmevals.devtools.demo.benchmark import write_benchmark
from vlmevals.devtools.demo.model import build_demo_model
from vlmevals.serving.engines import EngineError, engine_version, launch
from vlmevals.serving.process import ManagedServer, free_port, start
from vlmevals.vlmevalkit.command import ModelSpec, TaskSpec, build_invocation

SETUP = "scripts/setup_engines.sh"


def red_square_png() -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (32, 32), (200, 30, 30)).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def chat(server: ManagedServer) -> dict[str, Any]:
    """One non-streaming chat completion with an image, as VLMEvalKit's client sends it."""
    content = [
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{red_square_png()}"}},
        {"type": "text", "text": "What colour is the square?"},
    ]
    body = {"model": server.launch.served_model_name, "stream": False, "max_tokens": 1}
    r = httpx.post(
        f"{server.launch.base_url}/chat/completions",
        json={**body, "messages": [{"role": "user", "content": content}]},
        timeout=120,
    )
    r.raise_for_status()
    answer: dict[str, Any] = r.json()
    return answer


def vlmevalkit_answers(settings: Settings, server: ManagedServer, work: Path, limit: int) -> int:
    """VLMEvalKit's LMDeployAPI against the server on `limit` demo MCQ questions: the number answered."""
    write_benchmark("DEMO_SHAPES_MCQ", settings.lmu_data)
    name = server.launch.served_model_name  # VLMEvalKit's --model is the name it requests
    model = ModelSpec(name, endpoint_base_url=server.launch.base_url, gpus=0, api_nproc=4)
    inv = build_invocation(
        settings=settings, task=TaskSpec("DEMO_SHAPES_MCQ"), model=model, work_dir=work, mode="infer", limit=limit
    )
    argv = [*inv.argv, "--max-tokens", "1"]  # the demo model's max_new_tokens: it never stops on its own
    done = subprocess.run(argv, env={**os.environ, **inv.env}, capture_output=True, text=True, timeout=600)
    found = sorted(work.rglob(f"{name}_DEMO_SHAPES_MCQ.xlsx"))
    if done.returncode != 0 or not found:
        raise RuntimeError(f"VLMEvalKit against {server.launch.base_url} failed:\n{done.stderr[-3000:]}")
    import pandas as pd

    predictions = pd.read_excel(found[0])["prediction"].astype(str)
    return int((~predictions.str.startswith("Failed to obtain answer")).sum())


def check(work: Path, vlmevalkit_limit: int = 0) -> dict[str, Any]:
    settings = get_settings()
    try:
        version = engine_version("transformers", settings)
    except EngineError as err:
        raise SystemExit(f"{err}\nbuild it with {SETUP}") from err
    weights = build_demo_model(settings.models_dir / "demo-tiny-idefics3")
    spec = launch(
        "transformers", weights=str(weights), served_model_name="DemoTinyIdefics3", gpus=1, host="127.0.0.1",
        port=free_port(), settings=settings,
    )  # fmt: skip
    t0 = time.monotonic()
    server = start(spec, work / "engine.log", startup_timeout_s=300, env={"HF_HUB_OFFLINE": "1"})
    figures: dict[str, Any] = {"engine": "transformers", "version": version, "ready_s": time.monotonic() - t0}
    try:
        t1 = time.monotonic()
        answer = chat(server)
        figures |= {"chat_s": time.monotonic() - t1, "usage": answer["usage"], "answer": answer["choices"][0]}
        if vlmevalkit_limit:
            t2 = time.monotonic()
            figures["vlmevalkit_predictions"] = vlmevalkit_answers(settings, server, work / "vlmeval", vlmevalkit_limit)
            figures["vlmevalkit_s"] = time.monotonic() - t2
    finally:
        server.stop()
    figures["group_left"] = server.group_alive()
    figures["model_loads_in_log"] = (work / "engine.log").read_text().count("[transformers] Loading ")
    return figures


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--vlmevalkit", type=int, default=0, metavar="N", help="also VLMEvalKit on N demo questions")
    p.add_argument("--work", type=Path, default=Path(".local/engine-check"))
    args = p.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    json.dump(check(args.work, args.vlmevalkit), sys.stdout, indent=2, default=str)
    print()


if __name__ == "__main__":
    main()
