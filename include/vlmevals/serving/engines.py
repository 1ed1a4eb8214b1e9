"""Inference engines as the service starts them: each engine's command line, readiness route and version probe.

Every flag comes from the engine's own documentation (cited per engine below), not from memory. Each engine runs in
an environment of its own (engines pin their own torch and transformers): `EVALS_ENGINE_PYTHON_<ENGINE>` names its
interpreter, and the engine's command is the console script beside it, as a virtualenv installs it; unset, the
interpreter of `.venv-engines/<engine>` (scripts/setup_engines.sh) or else the command found on PATH.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

from vlmevals.core.settings import PROJECT_ROOT, Settings

Engine = Literal["vllm", "sglang", "lmdeploy", "transformers"]
ENGINES: tuple[str, ...] = get_args(Engine)
ENGINES_DIR = PROJECT_ROOT / ".venv-engines"

# The flags the service sets itself (weights, host, port, served name, tensor parallelism): a model's `serve.args`
# may not give them, or the engine would listen elsewhere or answer to another name than the service expects.
RESERVED_FLAGS: dict[str, frozenset[str]] = {
    "vllm": frozenset({"--model", "--host", "--port", "--served-model-name", "--tensor-parallel-size", "-tp"}),
    "sglang": frozenset(
        {"--model-path", "--model", "--host", "--port", "--served-model-name", "--tensor-parallel-size", "--tp-size"}
        | {"--tp"}  # the docs' own spelling of --tp-size (an argparse abbreviation)
    ),
    "lmdeploy": frozenset({"--server-name", "--server-port", "--model-name", "--tp"}),
    "transformers": frozenset({"--host", "--port"}),
}


class EngineError(RuntimeError):
    """An engine cannot be started or asked: the message names the engine and what to change."""


@dataclass(frozen=True)
class EngineLaunch:
    """One engine process to start: its command line and where it answers once ready."""

    engine: str
    argv: list[str]
    host: str
    port: int
    served_model_name: str  # what requests send as "model" (VLMEvalKit's --model name)
    health_path: str = "/health"
    # links the engine's working folder must hold (name -> weights folder): `transformers serve` answers to the
    # model as it was named at start, so it loads the weights through a link named as the served model
    links: dict[str, str] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible base URL (VLMEvalKit's `--base-url`)."""
        return f"http://{self.host}:{self.port}/v1"

    @property
    def health_url(self) -> str:
        return f"http://{self.host}:{self.port}{self.health_path}"

    def command_line(self) -> str:
        return subprocess.list2cmdline(self.argv)


def engine_python(engine: str, settings: Settings) -> str | None:
    """The engine's interpreter: its setting, else the one scripts/setup_engines.sh built, else None (PATH)."""
    configured: str | None = getattr(settings, f"engine_python_{engine}")
    if configured:
        return configured
    built = ENGINES_DIR / engine / "bin" / "python"
    return str(built) if built.exists() else None


def _script(python: str | None, name: str) -> str:
    """A console script of the engine's environment: beside its interpreter (not resolved: a venv's python is a
    link out of the venv), or the bare name for PATH."""
    return str(Path(python).parent / name) if python else name


def vllm_argv(python: str | None, weights: str, name: str, gpus: int, host: str, port: int) -> list[str]:
    # `vllm serve MODEL --host --port`: https://docs.vllm.ai/en/v0.31.0/cli/ ; --served-model-name and
    # --tensor-parallel-size: https://docs.vllm.ai/en/latest/configuration/serve_args/ (`vllm serve --help=all`)
    return [
        _script(python, "vllm"), "serve", weights, "--host", host, "--port", str(port),
        "--served-model-name", name, "--tensor-parallel-size", str(gpus),
    ]  # fmt: skip


def sglang_argv(python: str | None, weights: str, name: str, gpus: int, host: str, port: int) -> list[str]:
    # `python -m sglang.launch_server --model-path --host --port --tp-size --served-model-name`:
    # https://docs.sglang.io/docs/advanced_features/server_arguments (tables "HTTP server", "Runtime options",
    # "API related")
    return [
        python or "python3", "-m", "sglang.launch_server", "--model-path", weights,
        "--host", host, "--port", str(port), "--tp-size", str(gpus), "--served-model-name", name,
    ]  # fmt: skip


def lmdeploy_argv(python: str | None, weights: str, name: str, gpus: int, host: str, port: int) -> list[str]:
    # `lmdeploy serve api_server MODEL_PATH --server-name --server-port --tp --model-name`:
    # https://lmdeploy.readthedocs.io/en/latest/llm/api_server.html and `lmdeploy serve api_server -h`
    # (lmdeploy/cli/serve.py, add_parser_api_server)
    return [
        _script(python, "lmdeploy"), "serve", "api_server", weights,
        "--server-name", host, "--server-port", str(port), "--tp", str(gpus), "--model-name", name,
    ]  # fmt: skip


def transformers_argv(python: str | None, weights: str, name: str, gpus: int, host: str, port: int) -> list[str]:
    # `transformers serve [FORCE_MODEL] --host --port`: https://huggingface.co/docs/transformers/v5.13.1/serve-cli/
    # serving and `transformers serve --help` (5.23.0: FORCE_MODEL is "Model to preload and use for all requests";
    # a request naming another model is refused with 400 "Server is pinned to ..."). No served-name flag: FORCE_MODEL
    # is the served name, a link to the weights in the engine's working folder (EngineLaunch.links). No tensor
    # parallelism: it uses the visible devices (`--device auto`).
    del weights, gpus
    return [_script(python, "transformers"), "serve", name, "--host", host, "--port", str(port)]


ARGV: dict[str, Callable[[str | None, str, str, int, str, int], list[str]]] = {
    "vllm": vllm_argv,
    "sglang": sglang_argv,
    "lmdeploy": lmdeploy_argv,
    "transformers": transformers_argv,
}
# Readiness: each engine's health route answers 200 once the weights are loaded. vLLM: GET /health
# (https://docs.vllm.ai/en/latest/serving/openai_compatible_server/); SGLang: GET /health
# (https://docs.sglang.io/basic_usage/native_api.html); LMDeploy: GET /health (lmdeploy/serve/openai/endpoints/
# management.py); transformers serve: GET /health ({"status":"ok"}; its /v1/models scans the Hub cache and fails
# offline: measured, /work/shared/DESIGN.md "Facts for serving").
HEALTH_PATH = {"vllm": "/health", "sglang": "/health", "lmdeploy": "/health", "transformers": "/health"}
# the distribution whose version the fingerprint records
DISTRIBUTION = {"vllm": "vllm", "sglang": "sglang", "lmdeploy": "lmdeploy", "transformers": "transformers"}


def check_engine(engine: str) -> None:
    if engine not in ENGINES:
        raise EngineError(f"unknown engine {engine!r}; give one of {', '.join(ENGINES)}")


def reserved_in(engine: str, args: Sequence[str]) -> list[str]:
    """The arguments of `args` that set a flag the service sets itself (`--port 9` and `--port=9` alike)."""
    reserved = RESERVED_FLAGS[engine]
    return [a for a in args if a.split("=", 1)[0] in reserved]


def launch(
    engine: str,
    *,
    weights: str,
    served_model_name: str,
    gpus: int,
    host: str,
    port: int,
    args: Sequence[str] = (),
    settings: Settings,
) -> EngineLaunch:
    """The engine's command line for `weights` (a local folder or a Hub repo id), its own `args` appended."""
    check_engine(engine)
    clash = reserved_in(engine, args)
    if clash:
        raise EngineError(
            f"serve.args of engine {engine} set {', '.join(clash)}, which the service sets itself; leave them out"
        )
    links = {}
    if engine == "transformers":
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.+\-]*", served_model_name):
            raise EngineError(f"engine transformers serves a model under a file name; {served_model_name!r} is not one")
        links = {served_model_name: weights}
    argv = ARGV[engine](engine_python(engine, settings), weights, served_model_name, gpus, host, port)
    return EngineLaunch(engine, [*argv, *args], host, port, served_model_name, HEALTH_PATH[engine], links)


PROBE = "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))"


def version_argv(engine: str, settings: Settings) -> list[str]:
    """Asks the engine's environment for the installed version, without importing the engine (seconds for vLLM)."""
    check_engine(engine)
    return [engine_python(engine, settings) or "python3", "-c", PROBE, DISTRIBUTION[engine]]


def engine_version(engine: str, settings: Settings, timeout_s: float = 60.0) -> str:
    """The engine's installed version (what a served result's fingerprint records), or an error naming the fix."""
    argv = version_argv(engine, settings)
    fix = (
        f"install {DISTRIBUTION[engine]} in the engine's own environment and set EVALS_ENGINE_PYTHON_"
        f"{engine.upper()} to its python (for transformers: scripts/setup_engines.sh)"
    )
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise EngineError(f"engine {engine}: cannot run {argv[0]} ({err}); {fix}") from err
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-1:] or ["no output"]
        raise EngineError(f"engine {engine}: {DISTRIBUTION[engine]} not found by {argv[0]} ({tail[0]}); {fix}")
    return done.stdout.strip()
