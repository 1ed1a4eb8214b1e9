"""VLMEvalKit work dirs in all three layouts, built from what VLMEvalKit itself writes (a helper, not tests).

- flat: ms-vlmeval's standard mode (``tests.vlmeval_outputs.make_real_outputs``).
- upstream: ms-vlmeval's ``--api-mode`` writes ``{model}/T{YYYYMMDD-HHMMSS}/`` with status.json and relative
  symlinks in ``{model}/``; run once against the OpenAI-compatible test server (oracle answers) and cached.
- legacy: ``{model}/T{YYYYMMDD}_G{commit8}/`` rebuilt from the real flat files (nothing here writes it).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from vlmevals.devtools.demo.benchmark import DEMO_BENCHMARKS, write_benchmark

from tests.doubles.openai_server import serve
from tests.vlmeval_outputs import CACHE_ROOT, _vlmeval_env, cache_key, make_real_outputs

API_MODEL = "served"
API_DATA = ("DEMO_SHAPES_MCQ", "DEMO_SHAPES_YORN")  # YORN fails in api-mode scoring (a real recorded failure)


def _build_api_tree(dest: Path) -> None:
    lmu = dest / "LMUData"
    for name in DEMO_BENCHMARKS:
        write_benchmark(name, lmu)
    with serve(mode="oracle", tsv=str(lmu / "DEMO_SHAPES_MCQ.tsv")) as srv:
        cmd = [
            sys.executable,
            "-m",
            "vlmeval",
            "--model",
            API_MODEL,
            "--data",
            *API_DATA,
            "--base-url",
            srv.base_url,
            "--key",
            "sk-none",
            "--api-mode",
            "--work-dir",
            "outputs",
            "--judge",
            "exact_matching",
            "--reuse",
        ]
        env = {**_vlmeval_env(lmu), "NO_PROXY": "127.0.0.1,localhost"}
        with (dest / "vlmeval.log").open("wb") as log:
            rc = subprocess.run(cmd, cwd=dest, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=600).returncode
    (dest / "manifest.json").write_text(json.dumps({"exit_code": rc, "cache_key": cache_key()}))
    tdirs = list((dest / "outputs" / API_MODEL).glob("T*-*"))
    if rc != 0 or len(tdirs) != 1 or not (tdirs[0] / "status.json").exists():
        raise RuntimeError(
            f"VLMEvalKit api-mode run failed (rc={rc}):\n{(dest / 'vlmeval.log').read_text(errors='replace')[-4000:]}"
        )


def api_mode_tree(root: Path) -> dict[str, Any]:
    """Copy the cached upstream-layout tree into `root`; return {work_dir, model_dir, tdir}."""
    final = CACHE_ROOT / f"vlmeval-apimode-{cache_key()}"
    if not (final / "manifest.json").exists():
        tmp = CACHE_ROOT / f".{final.name}.{os.getpid()}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
            _build_api_tree(tmp)
            try:
                tmp.rename(final)
            except OSError:
                if not (final / "manifest.json").exists():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(final, root, symlinks=True, dirs_exist_ok=True)
    model_dir = root / "outputs" / API_MODEL
    return {"work_dir": root / "outputs", "model_dir": model_dir, "tdir": next(model_dir.glob("T*-*"))}


def flat_tree(root: Path) -> dict[str, Any]:
    return make_real_outputs(root)


def legacy_from_flat(
    flat_model_dir: Path, work_dir: Path, model: str, commit: str = "1a2b3c4d", day: str = "20250301"
) -> Path:
    """`{work_dir}/{model}/T{day}_G{commit}/` holding the real flat files (no status.json: older upstream)."""
    tdir = work_dir / model / f"T{day}_G{commit}"
    tdir.mkdir(parents=True)
    for f in flat_model_dir.iterdir():
        if f.is_file() and f.name != "status.json":
            shutil.copy2(f, tdir / f.name)
    return tdir


def newer_tfolder(model_dir: Path, tdir: Path, new_id: str) -> Path:
    """A second upstream run of the same model: a copy of `tdir` under a newer id, symlinks moved to it."""
    new = model_dir / new_id
    shutil.copytree(tdir, new, symlinks=True)
    status = json.loads((new / "status.json").read_text())
    status["eval_id"] = new_id
    (new / "status.json").write_text(json.dumps(status))
    for link in model_dir.iterdir():
        if link.is_symlink():
            target = os.readlink(link)
            link.unlink()
            link.symlink_to(target.replace(tdir.name, new_id))
    return new
