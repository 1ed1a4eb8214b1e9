"""The managed engine process with the stand-in engine on a real port: the whole life for each engine name, and
each way a start fails, always leaving no process behind."""

from __future__ import annotations

import os
import re
import signal
import socket
import time
from pathlib import Path

import httpx
import pytest
from vlmevals.core.settings import Settings
from vlmevals.serving.engines import ENGINES, EngineLaunch, launch
from vlmevals.serving.process import EngineDiedError, EngineStartError, free_port, start

HOST = "127.0.0.1"


def standin_launch(
    engine: str, bin_dir: Path, *args: str, port: int | None = None, weights: Path | None = None
) -> EngineLaunch:
    env = {f"EVALS_ENGINE_PYTHON_{engine.upper()}": str(bin_dir / "python")}
    if weights is None:
        weights = bin_dir.parent / "weights"
        weights.mkdir(exist_ok=True)
    return launch(
        engine, weights=str(weights), served_model_name="tiny", gpus=1, host=HOST, port=port or free_port(),
        args=args, settings=Settings.model_validate(env),
    )  # fmt: skip


def worker_pid(log: Path) -> int:
    found = re.search(r"worker pid (\d+)", log.read_text())
    assert found, log.read_text()
    return int(found.group(1))


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # a zombie of ours is gone for every purpose but the process table
    return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"


@pytest.mark.parametrize("engine", ENGINES)
def test_each_engine_starts_answers_and_stops_with_its_workers(engine: str, standin_bin: Path, tmp_path: Path) -> None:
    spec = standin_launch(engine, standin_bin, "--load-seconds", "1")
    server = start(spec, tmp_path / "engine.log", startup_timeout_s=30, poll_s=0.2)
    try:
        assert server.alive()
        models = httpx.get(f"{spec.base_url}/models", timeout=5).json()
        assert [m["id"] for m in models["data"]] == [spec.served_model_name]
        answer = httpx.post(
            f"{spec.base_url}/chat/completions",
            json={"model": spec.served_model_name, "messages": [{"role": "user", "content": "Shape?"}]},
            timeout=5,
        ).json()
        assert answer["usage"]["completion_tokens"] == 1 and answer["choices"][0]["message"]["content"] == "A"
        worker = worker_pid(server.log_path)
        assert server.log_path.read_text().startswith(f"$ {spec.command_line()}\n")
    finally:
        t0 = time.monotonic()
        server.stop(grace_s=5)
    assert time.monotonic() - t0 < 4, "the engine is reaped as it exits: no wait for the whole grace"
    assert gone(server.pid) and gone(worker) and not server.group_alive()


def test_bad_argument_fails_naming_engine_command_and_log(standin_bin: Path, tmp_path: Path) -> None:
    spec = standin_launch("vllm", standin_bin, "--no-such-flag")
    with pytest.raises(EngineStartError) as err:
        start(spec, tmp_path / "engine.log", startup_timeout_s=30, poll_s=0.2)
    text = str(err.value)
    assert text.startswith("engine vllm exited with status 2")
    assert f"command: {spec.command_line()}" in text
    assert "unrecognized arguments: --no-such-flag" in text, "the log's tail carries the engine's own message"


def test_load_failure_is_reported_with_the_log_tail_and_its_worker_ended(standin_bin: Path, tmp_path: Path) -> None:
    with pytest.raises(EngineStartError, match=r"(?s)engine sglang exited with status 1.*CUDA out of memory"):
        start(standin_launch("sglang", standin_bin, "--fail-load"), tmp_path / "e.log", startup_timeout_s=30)
    assert gone(worker_pid(tmp_path / "e.log"))


def test_startup_timeout_stops_the_engine(standin_bin: Path, tmp_path: Path) -> None:
    spec = standin_launch("lmdeploy", standin_bin, "--load-seconds", "60")
    t0 = time.monotonic()
    with pytest.raises(EngineStartError) as err:
        start(spec, tmp_path / "engine.log", startup_timeout_s=2, poll_s=0.2)
    assert time.monotonic() - t0 < 15
    assert f"engine lmdeploy did not answer {spec.health_url} within 2 s" in str(err.value)
    assert "Loading tiny" in str(err.value)
    assert gone(worker_pid(tmp_path / "engine.log"))


def test_port_taken_is_refused_before_starting(standin_bin: Path, tmp_path: Path) -> None:
    """Another server on the port would answer the health route in the engine's place: never started."""
    with socket.socket() as other:
        other.bind((HOST, 0))
        other.listen()
        port = other.getsockname()[1]
        spec = standin_launch("transformers", standin_bin, port=port)
        with pytest.raises(EngineStartError, match=f"engine transformers cannot start: port {port} on {HOST} is taken"):
            start(spec, tmp_path / "engine.log", startup_timeout_s=10)
    assert not (tmp_path / "engine.log").exists() or "stand-in" not in (tmp_path / "engine.log").read_text()


def test_a_sigkilled_engine_is_seen_dead_and_its_workers_still_end(standin_bin: Path, tmp_path: Path) -> None:
    server = start(standin_launch("vllm", standin_bin), tmp_path / "engine.log", startup_timeout_s=30, poll_s=0.2)
    worker = worker_pid(server.log_path)
    os.kill(server.pid, signal.SIGKILL)
    server.process.wait(timeout=10)
    assert not server.alive()
    with pytest.raises(EngineDiedError, match=r"(?s)engine vllm was killed by signal 9.*command: .*vllm serve"):
        server.check()
    assert not gone(worker), "its worker outlives it, as a real engine's would"
    server.stop(grace_s=5)
    assert gone(worker)


def test_transformers_without_local_weights_is_refused_before_starting(standin_bin: Path, tmp_path: Path) -> None:
    spec = standin_launch("transformers", standin_bin, weights=tmp_path / "missing")
    with pytest.raises(EngineStartError, match="engine transformers needs the weights as a local folder"):
        start(spec, tmp_path / "run" / "engine.log", startup_timeout_s=10)
    assert not (tmp_path / "run" / "engine.log").exists(), "nothing was started"
