"""A bin folder that looks like an engine's virtualenv, its commands being the stand-in engine (engine_standin.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

STANDIN = Path(__file__).with_name("engine_standin.py")
# command in the bin folder -> the engine it stands in for (`python` takes `-m sglang.launch_server`)
COMMANDS = {"vllm": "vllm", "lmdeploy": "lmdeploy", "transformers": "transformers", "python": "sglang"}


@pytest.fixture()
def standin_bin(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "engine-venv" / "bin"
    bin_dir.mkdir(parents=True)
    for command, engine in COMMANDS.items():
        path = bin_dir / command
        path.write_text(f'#!/bin/sh\nexec {sys.executable} {STANDIN} {engine} "$@"\n')
        path.chmod(0o755)
    return bin_dir
