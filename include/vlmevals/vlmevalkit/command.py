"""Building VLMEvalKit command lines for a run.

Three kinds of model: a VLMEvalKit registry name (`--model X --data Y`), a local model spec (written into a
`--config` JSON, since only the config accepts class + kwargs) and an OpenAI-compatible endpoint
(`--base-url`, VLMEvalKit's LMDeployAPI). Multi-GPU data-parallel runs go through torchrun.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field, replace
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
    revision: str | None = None  # Hub weights pinned to a branch, tag or commit (vlmevals.vlmevalkit.hub)
    api_nproc: int | None = None  # served models: concurrent requests; None = EVALS_API_NPROC_DEFAULT

    def with_weights(self, *, weights_path: str | None = None, hub_revision: str | None = None) -> ModelSpec:
        """The model at one of its checkpoints: a local folder replaces the spec's `model_path` (VLMEvalKit's
        config kwargs), a Hub revision replaces the model's `revision`."""
        if weights_path is not None:
            if self.model_spec is None:
                raise ValueError(
                    f"model {self.vlmeval_model!r} has no model_spec, so checkpoint weights ({weights_path}) cannot "
                    "replace its weights; give the model a model_spec with model_path"
                )
            key = "model" if "model" in self.model_spec and "model_path" not in self.model_spec else "model_path"
            return replace(self, model_spec={**self.model_spec, key: weights_path})
        if hub_revision is not None:
            return replace(self, revision=hub_revision)
        return self


FREEZE_AT_EXIT = """import gc, os, runpy, sys
args = sys.argv[1:]
try:
    if args[0] == "-m":
        sys.argv = args[1:]
        runpy.run_module(args[1], run_name="__main__", alter_sys=True)
    else:
        sys.argv = args
        sys.path[0] = os.path.dirname(os.path.abspath(args[0]))
        runpy.run_path(args[0], run_name="__main__")
finally:
    gc.freeze()
"""
"""Runs VLMEvalKit's CLI (`-m vlmeval ...` or `run.py ...`) as Python would, then freezes the garbage collector:
with torch and VLMEvalKit loaded, the interpreter's last collection walks every object for 1.2-2.7 s after the
results are on disk (measured), on the path to the leaderboard. atexit handlers and module teardown still run.
Inline (`python -c`), so VLMEvalKit's own environment (VLMEVAL_PYTHON) needs nothing of ours."""
LAUNCHER_LABEL = "<launcher: gc.freeze at exit>"


@dataclass
class Invocation:
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    config: dict[str, Any] | None = None

    def redacted(self) -> str:
        """The command for logs, with secrets hidden."""
        out, hide = [], False
        for a in self.argv:
            out.append("***" if hide else LAUNCHER_LABEL if a == FREEZE_AT_EXIT else a)
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


def effective_nproc(model: ModelSpec, settings: Settings) -> int:
    """A served model's concurrent requests before the endpoint cap: its own, else the service default."""
    return model.api_nproc or settings.api_nproc_default


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
    api_nproc: int | None = None,
    api_retry: int | None = None,
    judge_gateway: str | None = None,
    judge_api_nproc: int | None = None,
) -> Invocation:
    """The argv and environment for one VLMEvalKit call (`mode`: infer or eval); `judge_gateway`: the judge
    gateway's base URL, which then replaces EVALS_JUDGE_BASE_URL (see vlmevals.pipeline.judge_gateway)."""
    argv = _launcher(settings, model)
    config = None
    if model.model_spec is not None:
        config = _spec_config(settings, task, model)
        argv += ["--config", str(work_dir / "vlmeval_config.json")]
        if model.endpoint_base_url:  # an endpoint given as a config (LMDeployAPI class): its concurrency
            argv += ["--api-nproc", str(api_nproc or effective_nproc(model, settings))]
    else:
        argv += _registry_args(task, model, api_nproc or effective_nproc(model, settings), api_retry)
    argv += ["--work-dir", str(work_dir), "--mode", mode]
    if reuse or mode == "eval":
        argv.append("--reuse")
    if mode == "eval":  # else VLMEvalKit skips scoring if any answer failed; we count failed samples apart
        argv.append("--keep-failed")
    if limit:
        argv += ["--limit", str(limit)]
    if judge_gateway and (judge or settings.judge) != "exact_matching":
        argv += _gateway_args(judge or settings.judge, judge_gateway, judge_api_nproc)
    else:
        argv += _judge_args(settings, judge or settings.judge)
    return Invocation(argv=argv, env={"LMUData": str(settings.lmu_data)}, config=config)


def _launcher(settings: Settings, model: ModelSpec) -> list[str]:
    """`python run.py` (a checkout) or `python -m vlmeval` behind `FREEZE_AT_EXIT`, under torchrun when the model
    asks for it (torchrun's workers are its own: they exit as VLMEvalKit leaves them)."""
    py = python_executable(settings)
    entry = [str(settings.vlmeval_root / "run.py")] if settings.vlmeval_root else ["-m", "vlmeval"]
    if model.launch_mode == "torchrun" and model.gpus >= 1:  # nproc 1 too: the launch mode is the model's choice
        prefix = [py, "-m", "torch.distributed.run", f"--nproc-per-node={model.gpus}"]
        if entry[0] == "-m":
            prefix.append("--module")
            entry = entry[1:]
        return [*prefix, *entry]
    return [py, "-c", FREEZE_AT_EXIT, *entry]


def _spec_config(settings: Settings, task: TaskSpec, model: ModelSpec) -> dict[str, Any]:
    """The `--config` JSON of a model spec: VLMEvalKit's config takes class + kwargs, and the dataset's class."""
    assert model.model_spec is not None
    data_cls = task.dataset_class
    tsv = settings.lmu_data / f"{task.vlmeval_data}.tsv"
    if data_cls is None and tsv.exists():
        data_cls = default_dataset_class(tsv)
    if data_cls is None:
        raise ValueError(
            f"task dataset {task.vlmeval_data!r} needs vlmeval_dataset_class to run with a model spec "
            "(VLMEvalKit's --config requires the dataset class); set it on the task"
        )
    return {
        "model": {model.vlmeval_model: expand_paths(model.model_spec, settings)},
        "data": {task.vlmeval_data: {"class": data_cls, "dataset": task.vlmeval_data}},
    }


def _registry_args(task: TaskSpec, model: ModelSpec, api_nproc: int, api_retry: int | None) -> list[str]:
    """A registry model by name, or an OpenAI-compatible endpoint through VLMEvalKit's LMDeployAPI."""
    argv = ["--model", model.vlmeval_model, "--data", task.vlmeval_data]
    if model.endpoint_base_url:
        key = os.environ.get(model.endpoint_key_env, "") if model.endpoint_key_env else ""
        argv += ["--base-url", model.endpoint_base_url, "--key", key or "sk-none", "--api-nproc", str(api_nproc)]
        if api_retry:  # VLMEvalKit's default is 6 tries with random sleeps between them
            argv += ["--retry", str(api_retry)]
    return argv


def _judge_args(settings: Settings, judge: str) -> list[str]:
    argv = ["--judge", judge] if judge else []
    if settings.judge_base_url and judge != "exact_matching":
        argv += ["--judge-base-url", settings.judge_base_url]
        if settings.judge_key:
            argv += ["--judge-key", settings.judge_key]
    return argv


def _gateway_args(judge: str, gateway: str, api_nproc: int | None) -> list[str]:
    """Judge requests to the gateway: it holds the key and retries (with backoff and Retry-After), so VLMEvalKit
    tries each request once (its own retries sleep blindly and would multiply the gateway's)."""
    argv = ["--judge", judge, "--judge-base-url", gateway, "--judge-key", "sk-judge-gateway", "--judge-retry", "1"]
    if api_nproc:
        argv += ["--judge-api-nproc", str(api_nproc)]
    return argv


def write_config(inv: Invocation, path: Path) -> None:
    if inv.config is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(inv.config, indent=2))
