"""What the installed VLMEvalKit knows: its datasets (class, type, URL, md5, default judge) and its models
(class, default weights path), read once per VLMEvalKit version in a subprocess and cached in a JSON file.

`import vlmeval` costs ~7 s, so neither an API request nor a DAG parse may pay it: the first lookup for a
version writes the cache file, every later one reads it. The judge defaults come from the installed
`get_judge_kwargs` (run.py), never from a copied list.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from vlmevals.core.errors import InvalidRequestError
from vlmevals.core.settings import LOCAL_DIR, Settings
from vlmevals.vlmevalkit.command import python_executable
from vlmevals.vlmevalkit.versions import vlmeval_version

log = logging.getLogger(__name__)
CACHE_ENV = "EVALS_CACHE_DIR"
# dataset types VLMEvalKit scores offline with `--judge exact_matching`
EXACT_MATCH_TYPES = ("MCQ", "Y/N", "MCQ_MMMU_Pro")

_DUMP_CODE = r"""
import importlib.util, inspect, json, os, sys
root = os.environ.get("VLMEVAL_ROOT")
if root:
    sys.path.insert(0, root)
from vlmeval.dataset import DATASET_CLASSES
from vlmeval.config import supported_VLM
judge_fn = None
try:
    from vlmeval.run import get_judge_kwargs as judge_fn
except Exception:
    if root and os.path.exists(os.path.join(root, "run.py")):
        try:
            spec = importlib.util.spec_from_file_location("vlmeval_run_py", os.path.join(root, "run.py"))
            mod = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(mod)
            judge_fn = getattr(mod, "get_judge_kwargs", None)
        except Exception:
            judge_fn = None

class Args:
    api_nproc, retry, judge_timeout = 4, 3, 600
    def __getattr__(self, name):
        return None

datasets = {}
for cls in DATASET_CLASSES:
    try:
        names = cls.supported_datasets()
    except Exception:
        continue
    urls, md5s = getattr(cls, "DATASET_URL", {}) or {}, getattr(cls, "DATASET_MD5", {}) or {}
    try:
        src = inspect.getsource(cls.evaluate)
    except Exception:
        src = ""
    # evaluate() builds a judge and has no exact-matching fallback: an LLM judge is needed
    builds_judge = "build_judge" in src and "exact_matching" not in src
    for name in names:
        if name in datasets:
            continue
        judge = None
        if judge_fn is not None:
            try:
                judge = judge_fn(name, getattr(cls, "TYPE", ""), Args()).get("model")
            except Exception:
                judge = None
        url = urls.get(name) if isinstance(urls, dict) else None
        md5 = md5s.get(name) if isinstance(md5s, dict) else None
        datasets[name] = {"class": cls.__name__, "type": getattr(cls, "TYPE", None), "url": url if isinstance(url, str)
                          else None, "md5": md5 if isinstance(md5, str) else None, "judge": judge,
                          "builds_judge": builds_judge}
models = {}
for name, ctor in supported_VLM.items():
    kw = getattr(ctor, "keywords", None) or {}
    func = getattr(ctor, "func", ctor)
    path = kw.get("model_path")
    models[name] = {"class": getattr(func, "__name__", str(func)), "path": path if isinstance(path, str) else None}
print(json.dumps({"datasets": datasets, "models": models, "judge_defaults": judge_fn is not None}))
"""


@dataclass(frozen=True)
class DatasetEntry:
    name: str
    cls: str
    type: str | None
    url: str | None
    md5: str | None
    judge: str | None
    builds_judge: bool = False

    @property
    def needs_llm_judge(self) -> bool:
        """Scored by an LLM (run.py's default judge, or an evaluate() that always builds one), and exact
        matching cannot stand in (not an MCQ or yes/no type)."""
        if (self.type or "").strip() in EXACT_MATCH_TYPES:
            return False
        return self.judge not in (None, "", "exact_matching") or self.builds_judge


@dataclass(frozen=True)
class Registry:
    version: str
    datasets: dict[str, dict[str, Any]]
    models: dict[str, dict[str, Any]]

    def dataset(self, name: str) -> DatasetEntry | None:
        d = self.datasets.get(name)
        if d is None:
            return None
        return DatasetEntry(
            name, d["class"], d.get("type"), d.get("url"), d.get("md5"), d.get("judge"), bool(d.get("builds_judge"))
        )

    def model_path(self, name: str) -> str | None:
        """The default weights path of a registry model (a Hub repo id for most local models)."""
        return (self.models.get(name) or {}).get("path")


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or LOCAL_DIR / "cache")


def cache_file(version: str, python: str) -> Path:
    safe = "".join(c if c.isalnum() or c in "-_.=" else "_" for c in f"{version}-{Path(python).resolve()}")
    return cache_dir() / f"vlmeval-registry-{safe[-180:]}.json"


def _dump(python: str, root: Path | None) -> dict[str, Any]:
    env = {**os.environ, **({"VLMEVAL_ROOT": str(root)} if root else {})}
    res = subprocess.run([python, "-c", _DUMP_CODE], capture_output=True, text=True, timeout=600, env=env)
    lines = res.stdout.strip().splitlines()
    if res.returncode != 0 or not lines:
        raise InvalidRequestError(
            f"cannot read VLMEvalKit's registry with {python}: {res.stderr.strip()[-800:]}; check that "
            "VLMEvalKit imports there (VLMEVAL_PYTHON, VLMEVAL_ROOT)"
        )
    data: dict[str, Any] = json.loads(lines[-1])
    return data


_DUMPING = threading.Lock()


@lru_cache(maxsize=8)
def _load(path: Path, mtime_ns: int) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _write_cache(path: Path, python: str, root: Path | None) -> None:
    with _DUMPING:  # a request arriving while the warm-up dumps waits for it instead of importing vlmeval again
        if path.exists():
            return
        data = _dump(python, root)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data))
        tmp.replace(path)


def load(settings: Settings) -> Registry:
    """The registry of the VLMEvalKit the settings select (a subprocess only when its cache file is absent)."""
    python = python_executable(settings)
    root = str(settings.vlmeval_root) if settings.vlmeval_root else None
    version = vlmeval_version(python, root)
    path = cache_file(version, python)
    if not path.exists():
        _write_cache(path, python, settings.vlmeval_root)
    data = _load(path, path.stat().st_mtime_ns)
    return Registry(version, data["datasets"], data["models"])


def warm_in_background(settings: Settings) -> threading.Thread:
    """Write the cache file while the stack starts, so the first POST /tasks or /models on a fresh machine does
    not pay `import vlmeval` (seconds, more than a client's timeout on a busy machine)."""

    def _warm() -> None:
        try:
            load(settings)
        except Exception:  # VLMEvalKit not importable: the name checks say so when they are asked
            log.warning("VLMEvalKit's registry could not be read at start-up", exc_info=True)

    thread = threading.Thread(target=_warm, name="vlmeval-registry-warm", daemon=True)
    thread.start()
    return thread
