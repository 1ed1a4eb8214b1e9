"""The `evals_db` Connection from one source only (Airflow's metadata DB, or a secrets backend), for subprocesses.

Airflow reads its configuration (the secrets backend included) once per process, and tests/conftest.py sets
AIRFLOW_CONN_EVALS_DB at import, so each case runs in a subprocess whose environment lacks that variable and
whose DATABASE_URL leads nowhere: a run that completes there found our database through the Connection alone.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SOURCES = ("metadata_db", "secrets_backend")
NOWHERE = "postgresql+psycopg://nobody@127.0.0.1:1/no_database_here"
"""DATABASE_URL in the subprocess: nothing listens on port 1, so falling back to it fails loudly."""


def evals_db_uri() -> str:
    """The Connection URI of this session's database (what conftest put in AIRFLOW_CONN_EVALS_DB)."""
    return os.environ["AIRFLOW_CONN_EVALS_DB"]


def _airflow(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "airflow", *args], capture_output=True, text=True, env=os.environ.copy(), timeout=300
    )


@contextmanager
def connection_only_in(source: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    """The environment of a process that can find `evals_db` only in `source`; the Connection is removed after."""
    env = {k: v for k, v in os.environ.items() if k != "AIRFLOW_CONN_EVALS_DB"}
    env["DATABASE_URL"] = NOWHERE
    if source == "secrets_backend":
        path = tmp_path / "connections.json"
        path.write_text(json.dumps({"evals_db": evals_db_uri()}))
        env["AIRFLOW__SECRETS__BACKEND"] = "airflow.secrets.local_filesystem.LocalFilesystemBackend"
        env["AIRFLOW__SECRETS__BACKEND_KWARGS"] = json.dumps({"connections_file_path": str(path)})
        yield env
        return
    assert source == "metadata_db", source
    res = _airflow("connections", "add", "evals_db", "--conn-uri", evals_db_uri())
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    try:
        yield env
    finally:
        res = _airflow("connections", "delete", "evals_db")
        assert res.returncode == 0, res.stderr[-2000:]


def run_python(code: str, env: dict[str, str], timeout: float = 600) -> str:
    """Run `code` in a fresh interpreter; its stdout (the assertion shows the output's tail on failure)."""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=timeout)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-5000:]
    return res.stdout
