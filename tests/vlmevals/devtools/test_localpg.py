"""The private PostgreSQL's system user: `useradd` is found outside PATH, and a missing one is one clear line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from vlmevals.devtools import localpg

ROOT = Path(__file__).resolve().parents[3]


def _tool(folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    tool = folder / name
    tool.write_text("#!/bin/sh\nexit 0\n")
    tool.chmod(0o755)
    return tool


def test_useradd_is_found_in_an_sbin_folder_that_path_lacks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sbin = tmp_path / "sbin"
    useradd = _tool(sbin, "useradd")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))  # as cron's PATH: no sbin folder in it
    monkeypatch.setattr(localpg, "SBIN_DIRS", (str(tmp_path / "usr-sbin"), str(sbin)))
    assert localpg.system_tool("useradd", "passwd") == str(useradd)


def test_the_real_sbin_folders_are_searched(monkeypatch: pytest.MonkeyPatch) -> None:
    if not any(Path(d, "useradd").exists() for d in localpg.SBIN_DIRS):
        pytest.skip("no useradd in this machine's sbin folders")
    monkeypatch.setenv("PATH", "/nonexistent")
    assert Path(localpg.system_tool("useradd", "passwd")).parent.as_posix() in localpg.SBIN_DIRS


def test_a_missing_useradd_is_one_line_naming_the_package_and_the_way_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(localpg, "SBIN_DIRS", (str(tmp_path / "sbin"),))
    monkeypatch.setattr(localpg.os, "geteuid", lambda: 0)
    monkeypatch.setattr(localpg, "SYSTEM_USER", "vlmevals-no-such-user")
    with pytest.raises(localpg.SetupError) as err:
        localpg._run_as()
    message = str(err.value)
    assert "\n" not in message
    assert "`useradd` (package passwd)" in message and "DATABASE_URL" in message and "vlmevals-no-such-user" in message


SCRIPT = """
import os, sys
from vlmevals import cli
from vlmevals.devtools import localpg
localpg.SBIN_DIRS = ()
localpg.SYSTEM_USER = "vlmevals-no-such-user"
os.geteuid = lambda: 0  # as root on a machine whose system user is not created yet
sys.argv = ["vlmevals", "up"]
cli.main()
"""


def test_the_cli_prints_the_one_line_without_a_traceback(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(PATH=str(tmp_path), PYTHONPATH=str(ROOT / "include"), EVALS_HOME=str(tmp_path / ".local"))
    env.update(COLUMNS="200", EVALS_PG_PORT="1")
    res = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=120)
    out = res.stdout + res.stderr
    assert res.returncode == 1, out
    assert "Traceback" not in out and "FileNotFoundError" not in out, out
    lines = [line for line in out.splitlines() if "error:" in line]
    assert lines == [
        "error: creating the system user vlmevals-no-such-user needs `useradd` (package passwd); install it or "
        "set DATABASE_URL to your own PostgreSQL"
    ], out
