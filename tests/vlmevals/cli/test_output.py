"""Every URL and path the CLI prints stays whole on one line: in a 40-column terminal and when piped."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import struct
import subprocess
import sys
import termios

import pytest

HOME = "/tmp/a-rather-long-folder-name/for-the-stack/.local"
AIRFLOW_RUN = "http://127.0.0.1:8080/dags/eval_run/runs/manual__2026-12-02T06:52:34.123456+00:00"
ARTIFACTS = "/tmp/a-rather-long-folder-name/outputs/runs/12345/artifacts-of-this-run"
ERROR = f"missing metric file {ARTIFACTS}/demo-tiny-idefics3/demo_acc.csv: rerun scoring"

PRINT = f"""
from types import SimpleNamespace
from vlmevals.cli import stack as cli
from vlmevals.devtools.stack import Stack, StackSettings
stack = Stack(StackSettings.model_validate({{"EVALS_HOME": {HOME!r}}}))
cli._print_access(stack)
run = SimpleNamespace(id=12345, status="failed", primary_metric=0.4, error={ERROR!r}, artifacts_dir={ARTIFACTS!r})
cli.print_result(run, "demo-shapes-mcq Overall, demo-tiny-idefics3", {AIRFLOW_RUN!r})
"""
EXPECTED = [AIRFLOW_RUN, ARTIFACTS, f"{HOME}/env.sh", f"{ARTIFACTS}/demo-tiny-idefics3/demo_acc.csv"]


def _env() -> dict[str, str]:
    return {**os.environ, "COLUMNS": "40", "TERM": "xterm-256color", "EVALS_HOME": HOME}


def _run_in_terminal(columns: int) -> str:
    """The script's output as a terminal of `columns` columns shows it (a pseudo-terminal with that size)."""
    main, child = pty.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    proc = subprocess.Popen([sys.executable, "-c", PRINT], stdout=child, stderr=child, env=_env(), close_fds=True)
    os.close(child)
    chunks = []
    while True:
        try:
            data = os.read(main, 65536)
        except OSError:  # EIO once the child side is closed
            break
        if not data:
            break
        chunks.append(data)
    os.close(main)
    assert proc.wait(timeout=60) == 0, b"".join(chunks).decode(errors="replace")[-3000:]
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07", "", b"".join(chunks).decode()).replace("\r", "")


def _run_piped() -> str:
    res = subprocess.run([sys.executable, "-c", PRINT], capture_output=True, text=True, env=_env(), timeout=60)
    assert res.returncode == 0, res.stderr[-3000:]
    return res.stdout


@pytest.mark.parametrize("how", ["terminal-40-columns", "piped"])
def test_urls_and_paths_stay_on_one_line(how: str) -> None:
    out = _run_in_terminal(40) if how != "piped" else _run_piped()
    lines = out.splitlines()
    assert any(line.startswith("Airflow run: ") for line in lines), out
    for text in EXPECTED:
        assert any(text in line for line in lines), f"{text!r} broken over lines in:\n{out}"
    assert any("http://127.0.0.1:8080" in line and "admin/admin" in line for line in lines), out


def test_the_terminal_really_was_narrow() -> None:
    """Guard for the test above: rich saw 40 columns, so a wrapping console would have broken the URL."""
    code = "from vlmevals.cli.output import console; import json; print(json.dumps(console.width))"
    main, child = pty.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 40, 0, 0))
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=child, stderr=child, env=_env(), close_fds=True)
    os.close(child)
    out = b""
    while True:
        try:
            data = os.read(main, 4096)
        except OSError:
            break
        if not data:
            break
        out += data
    os.close(main)
    proc.wait(timeout=60)
    assert json.loads(out.decode().strip().splitlines()[-1]) == 40
