"""A real MLflow tracking server on 127.0.0.1 (SQLite backend, artifacts served by it), and eval runs written
through the run life cycle, as the pipeline writes them."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[3]
SERVER_VENV = ROOT / ".local" / "tools" / "mlflow-server"  # scripts/setup_mlflow_server.sh
MLFLOW_BIN = Path(os.environ.get("EVALS_TEST_MLFLOW_BIN", SERVER_VENV / "bin" / "mlflow"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class MlflowServer:
    """`mlflow server` as a subprocess; stop() and start() again keep its port and its SQLite store."""

    def __init__(self, home: Path) -> None:
        self.home, self.port = home, _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 180.0) -> None:
        cmd = [str(MLFLOW_BIN), "server", "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"]
        cmd += ["--backend-store-uri", f"sqlite:///{self.home}/mlflow.db"]
        cmd += ["--artifacts-destination", str(self.home / "artifacts")]
        log = (self.home / "server.log").open("ab")
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # its own venv's mlflow, not our client
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=log, start_new_session=True, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited: {(self.home / 'server.log').read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"mlflow server not up after {timeout} s: {(self.home / 'server.log').read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, 15)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait(10)
        self.proc = None


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    if not MLFLOW_BIN.exists():  # a failure, not a skip: CI (scripts/test.sh) builds it
        pytest.fail(f"no MLflow server at {MLFLOW_BIN}: run scripts/setup_mlflow_server.sh (scripts/test.sh does)")
    server = MlflowServer(tmp_path_factory.mktemp("mlflow"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture()
def exporting(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """Exports configured for MLflow (no URI yet: tests add it) and TensorBoard under tmp_path/tb."""
    from vlmevals.core.settings import get_settings

    monkeypatch.setenv("EVALS_EXPORTERS", "mlflow,tensorboard")
    monkeypatch.setenv("EVALS_TENSORBOARD_DIR", str(tmp_path / "tb"))
    monkeypatch.setenv("EVALS_EXPORT_BACKOFF_S", "5")
    get_settings.cache_clear()
    yield tmp_path / "tb"
    get_settings.cache_clear()
