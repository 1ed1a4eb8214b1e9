"""What the interpreter that runs VLMEvalKit has installed: the toolkit's identity for the run record and the
library versions for the fingerprint. Probed once per interpreter (and checkout) per process, without importing
the packages (that costs seconds); another interpreter is asked in one subprocess."""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import subprocess
import sys
from functools import lru_cache

VLMEVAL_DIST = "ms-vlmeval"
PROBED_DISTS = ("torch", "transformers", VLMEVAL_DIST)
_PROBE = """
import importlib.metadata as m, json, platform, sys
out = {"python": platform.python_version()}
for p in sys.argv[1:]:
    try:
        out[p] = m.version(p)
    except Exception:
        out[p] = None
print(json.dumps(out))
"""


def _installed_here() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for dist in PROBED_DISTS:
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = None
    return out


@lru_cache(maxsize=4)
def package_versions(python: str) -> dict[str, str | None]:
    """Python and `PROBED_DISTS` versions in `python` (None: not installed); our own interpreter without a
    subprocess. A probe that fails leaves only our Python's version: the environment is informative only."""
    if os.path.realpath(python) == os.path.realpath(sys.executable):
        return _installed_here()
    try:
        res = subprocess.run([python, "-c", _PROBE, *PROBED_DISTS], capture_output=True, text=True, timeout=60)
        probed: dict[str, str | None] = json.loads(res.stdout.strip().splitlines()[-1])
        return probed
    except Exception:
        return {"python": platform.python_version()}


@lru_cache(maxsize=4)
def vlmeval_version(python: str, root: str | None) -> str:
    """Toolkit identity for the run record: the checkout's commit, or the installed package's version."""
    if root:
        res = subprocess.run(["git", "-C", root, "rev-parse", "HEAD"], capture_output=True, text=True)
        return f"git:{res.stdout.strip()[:12]}" if res.returncode == 0 else f"checkout:{root}"
    version = package_versions(python).get(VLMEVAL_DIST)
    return f"{VLMEVAL_DIST}=={version}" if version else "unknown"
