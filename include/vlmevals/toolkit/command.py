"""Building VLMEvalKit command lines for a run.

Three kinds of model: a VLMEvalKit registry name (`--model X --data Y`), a local model spec (written into a
`--config` JSON, since only the config accepts class + kwargs) and an OpenAI-compatible endpoint
(`--base-url`, VLMEvalKit's LMDeployAPI). Multi-GPU data-parallel runs go through torchrun.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from vlmevals.core.settings import Settings


@dataclass(frozen=True)
class TaskSpec:
    vlmeval_data: str
    dataset_class: str | None = None


@dataclass(frozen=True)
class ModelSpec:
    vlmeval_model: str
    model_spec: dict[str, Any] | None = None
    endpoint_base_url: str | None = None
    endpoint_key_env: str | None = None
    gpus: int = 1
    launch_mode: str = "single"
    revision: str | None = None  # Hub weights pinned to a branch, tag or commit (vlmevals.toolkit.hub)


@dataclass
class Invocation:
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    config: dict[str, Any] | None = None

    def redacted(self) -> str:
        """The command for logs, with secrets hidden."""
        out, hide = [], False
        for a in self.argv:
            out.append("***" if hide else a)
            hide = a in ("--key", "--judge-key")
        return " ".join(out)


def python_executable(settings: Settings) -> str:
    return settings.vlmeval_python or sys.executable


def expand_paths(value: Any, settings: Settings) -> Any:
    """Expand {models_dir} / {lmu_data} placeholders in a model spec (kept symbolic in the catalogue)."""
    if isinstance(value, str):
        return value.replace("{models_dir}", str(settings.models_dir)).replace("{lmu_data}", str(settings.lmu_data))
    if isinstance(value, dict):
        return {k: expand_paths(v, settings) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_paths(v, settings) for v in value]
    return value


def default_dataset_class(tsv: Path) -> str:
    """The class VLMEvalKit itself would pick for a custom TSV (see vlmeval.dataset.build_dataset)."""
    with tsv.open(encoding="utf-8") as fh:
        header = fh.readline().rstrip("\n").split("\t")
    if "A" in header and "B" in header:
        return "CustomMCQDataset" if ("image" in header or "image_path" in header) else "CustomTextMCQDataset"
    return "CustomVQADataset"


def build_invocation(
    *,
    settings: Settings,
    task: TaskSpec,
    model: ModelSpec,
    work_dir: Path,
    mode: str,
    judge: str | None = None,
    reuse: bool = True,
    limit: int | None = None,
    api_nproc: int = 4,
    config_path: Path | None = None,
    api_retry: int | None = None,
) -> Invocation:
    """The argv and environment for one VLMEvalKit call (`mode`: infer or eval)."""
    py = python_executable(settings)
    if settings.vlmeval_root:
        entry = [str(settings.vlmeval_root / "run.py")]
    else:
        entry = ["-m", "vlmeval"]
    if model.launch_mode == "torchrun" and model.gpus >= 1:  # nproc 1 too: the launch mode is the model's choice
        prefix = [py, "-m", "torch.distributed.run", f"--nproc-per-node={model.gpus}"]
        if entry[0] == "-m":
            prefix.append("--module")
            entry = entry[1:]
        argv = [*prefix, *entry]
    else:
        argv = [py, *entry]

    env = {"LMUData": str(settings.lmu_data)}
    config = None
    if model.model_spec is not None:
        spec = expand_paths(model.model_spec, settings)
        data_cls = task.dataset_class
        tsv = settings.lmu_data / f"{task.vlmeval_data}.tsv"
        if data_cls is None and tsv.exists():
            data_cls = default_dataset_class(tsv)
        if data_cls is None:
            raise ValueError(
                f"task dataset {task.vlmeval_data!r} needs vlmeval_dataset_class to run with a model spec "
                "(VLMEvalKit's --config requires the dataset class); set it on the task"
            )
        config = {
            "model": {model.vlmeval_model: spec},
            "data": {task.vlmeval_data: {"class": data_cls, "dataset": task.vlmeval_data}},
        }
        path = config_path or (work_dir / "vlmeval_config.json")
        argv += ["--config", str(path)]
    else:
        argv += ["--model", model.vlmeval_model, "--data", task.vlmeval_data]
        if model.endpoint_base_url:
            argv += ["--base-url", model.endpoint_base_url]
            key = os.environ.get(model.endpoint_key_env or "", "") if model.endpoint_key_env else ""
            argv += ["--key", key or "sk-none"]
            argv += ["--api-nproc", str(api_nproc)]
            if api_retry:  # VLMEvalKit's default is 6 tries with random sleeps between them
                argv += ["--retry", str(api_retry)]

    argv += ["--work-dir", str(work_dir), "--mode", mode]
    if reuse or mode == "eval":
        argv.append("--reuse")
    if mode == "eval":  # else VLMEvalKit skips scoring if any answer failed; we count failed samples apart
        argv.append("--keep-failed")
    if limit:
        argv += ["--limit", str(limit)]
    judge = judge or settings.judge
    if judge:
        argv += ["--judge", judge]
    if settings.judge_base_url and judge != "exact_matching":
        argv += ["--judge-base-url", settings.judge_base_url]
        if settings.judge_key:
            argv += ["--judge-key", settings.judge_key]
    return Invocation(argv=argv, env=env, config=config)


def write_config(inv: Invocation, path: Path) -> None:
    if inv.config is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(inv.config, indent=2))


@lru_cache(maxsize=4)
def vlmeval_version(python: str, root: str | None) -> str:
    """Toolkit identity for the run record: the checkout's commit, or the installed package's version."""
    if root:
        res = subprocess.run(["git", "-C", root, "rev-parse", "HEAD"], capture_output=True, text=True)
        return f"git:{res.stdout.strip()[:12]}" if res.returncode == 0 else f"checkout:{root}"
    if os.path.realpath(python) == os.path.realpath(sys.executable):  # our own interpreter: no subprocess
        import importlib.metadata

        try:
            return f"ms-vlmeval=={importlib.metadata.version('ms-vlmeval')}"
        except importlib.metadata.PackageNotFoundError:
            return "unknown"
    code = "import importlib.metadata as m; print(m.version('ms-vlmeval'))"
    res = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=60)
    return f"ms-vlmeval=={res.stdout.strip()}" if res.returncode == 0 else "unknown"
