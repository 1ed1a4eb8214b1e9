"""Every eval_run task starts in a fresh child process that imports its step: the steps up to scoring must not
pull in pandas, numpy, torch or VLMEvalKit (~0.5 s or more per task start, on the path of every run)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

HEAVY = ("pandas", "numpy", "torch", "vlmeval")


def test_steps_module_is_import_light() -> None:
    code = (
        "import json, sys; import vlmevals.pipeline.steps, vlmevals.pipeline.notes; "
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ, check=True)
    assert json.loads(res.stdout.strip().splitlines()[-1]) == []
