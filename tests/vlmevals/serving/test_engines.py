"""Each engine's command line against the flags its documentation names, the interpreter per engine, the health
route and the version probe."""

from __future__ import annotations

import importlib.metadata
import sys
from pathlib import Path

import pytest
from vlmevals.core.settings import Settings
from vlmevals.serving import engines
from vlmevals.serving.engines import EngineError, engine_version, launch

WEIGHTS = "/models/qwen2-vl-7b"


def settings(**env: str) -> Settings:
    return Settings.model_validate(env)


def argv_of(engine: str, python: str | None = "/envs/e/bin/python", args: tuple[str, ...] = ()) -> list[str]:
    s = settings(**({f"EVALS_ENGINE_PYTHON_{engine.upper()}": python} if python else {}))
    return launch(
        engine, weights=WEIGHTS, served_model_name="qwen2-vl-7b", gpus=2, host="10.0.0.5", port=8123, args=args,
        settings=s,
    ).argv  # fmt: skip


def test_vllm_serve_command() -> None:
    # docs.vllm.ai: `vllm serve MODEL --host H --port P --served-model-name N --tensor-parallel-size K`
    assert argv_of("vllm", args=("--max-model-len", "8192")) == [
        "/envs/e/bin/vllm", "serve", WEIGHTS, "--host", "10.0.0.5", "--port", "8123",
        "--served-model-name", "qwen2-vl-7b", "--tensor-parallel-size", "2", "--max-model-len", "8192",
    ]  # fmt: skip


def test_sglang_launch_server_command() -> None:
    # docs.sglang.io server arguments: `python -m sglang.launch_server --model-path --host --port --tp-size
    # --served-model-name`
    assert argv_of("sglang") == [
        "/envs/e/bin/python", "-m", "sglang.launch_server", "--model-path", WEIGHTS, "--host", "10.0.0.5",
        "--port", "8123", "--tp-size", "2", "--served-model-name", "qwen2-vl-7b",
    ]  # fmt: skip


def test_lmdeploy_api_server_command() -> None:
    # lmdeploy docs: `lmdeploy serve api_server MODEL --server-name --server-port --tp --model-name`
    assert argv_of("lmdeploy") == [
        "/envs/e/bin/lmdeploy", "serve", "api_server", WEIGHTS, "--server-name", "10.0.0.5",
        "--server-port", "8123", "--tp", "2", "--model-name", "qwen2-vl-7b",
    ]  # fmt: skip


def test_transformers_serve_command_serves_a_link_named_as_the_model() -> None:
    # transformers docs (serve CLI): `transformers serve FORCE_MODEL --host --port`; it answers to FORCE_MODEL only
    s = settings(EVALS_ENGINE_PYTHON_TRANSFORMERS="/envs/t/bin/python")
    got = launch("transformers", weights=WEIGHTS, served_model_name="Qwen2-VL", gpus=1, host="h", port=1, settings=s)
    assert got.argv == ["/envs/t/bin/transformers", "serve", "Qwen2-VL", "--host", "h", "--port", "1"]
    assert got.served_model_name == "Qwen2-VL" and got.links == {"Qwen2-VL": WEIGHTS}
    assert got.base_url == "http://h:1/v1" and got.health_url == "http://h:1/health"
    with pytest.raises(EngineError, match=r"a file name; '\.\./x' is not one"):
        launch("transformers", weights=WEIGHTS, served_model_name="../x", gpus=1, host="h", port=1, settings=s)
    assert launch("vllm", weights=WEIGHTS, served_model_name="v", gpus=1, host="h", port=1, settings=s).links == {}


def test_without_an_interpreter_the_command_comes_from_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(engines, "ENGINES_DIR", tmp_path / "none-built")
    assert argv_of("vllm", python=None)[:2] == ["vllm", "serve"]
    assert argv_of("sglang", python=None)[:3] == ["python3", "-m", "sglang.launch_server"]
    built = tmp_path / "built" / "lmdeploy" / "bin"
    built.mkdir(parents=True)
    (built / "python").touch()
    monkeypatch.setattr(engines, "ENGINES_DIR", tmp_path / "built")
    assert argv_of("lmdeploy", python=None)[0] == str(built / "lmdeploy"), "setup_engines.sh's venv comes next"


def test_health_route_of_every_engine() -> None:
    for engine in engines.ENGINES:
        got = launch(engine, weights="w", served_model_name="n", gpus=1, host="h", port=2, settings=settings())
        assert got.health_url == "http://h:2/health", engine


def test_refusals_name_the_fix() -> None:
    with pytest.raises(EngineError, match="unknown engine 'tgi'; give one of vllm, sglang, lmdeploy, transformers"):
        argv_of("tgi")
    with pytest.raises(EngineError, match="set --served-model-name=x, which the service sets itself; leave them out"):
        argv_of("vllm", args=("--served-model-name=x",))


def test_version_probe_reads_the_engines_environment() -> None:
    """The probe asks the engine's interpreter for the installed distribution (ours has transformers, not vLLM)."""
    ours = settings(EVALS_ENGINE_PYTHON_TRANSFORMERS=sys.executable, EVALS_ENGINE_PYTHON_VLLM=sys.executable)
    assert engine_version("transformers", ours) == importlib.metadata.version("transformers")
    with pytest.raises(EngineError, match=r"vllm not found by .*set EVALS_ENGINE_PYTHON_VLLM to its python"):
        engine_version("vllm", ours)
    missing = settings(EVALS_ENGINE_PYTHON_LMDEPLOY="/nonexistent/bin/python")
    with pytest.raises(EngineError, match="engine lmdeploy: cannot run /nonexistent/bin/python"):
        engine_version("lmdeploy", missing)
