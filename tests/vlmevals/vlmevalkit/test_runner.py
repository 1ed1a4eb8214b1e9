from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from types import FrameType

import pytest
from vlmevals.vlmevalkit.runner import PIDFILE, kill_leftover, run_streaming


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie counts as dead
    with open(f"/proc/{pid}/stat") as fh:
        return fh.read().split()[2] != "Z"


def test_output_teed_to_artifacts(tmp_path: Path) -> None:
    ticks: list[int] = []
    code = "import sys, time\nprint('hello'); print('oops', file=sys.stderr); time.sleep(0.5); sys.exit(3)"
    res = run_streaming(
        [sys.executable, "-c", code],
        artifacts=tmp_path,
        env={},
        cwd=tmp_path,
        label="t",
        on_tick=lambda: ticks.append(1),
        tick_s=0.1,
    )
    assert res.returncode == 3 and "oops" in res.stderr_tail
    assert "hello" in (tmp_path / "worker_stdout.log").read_text()
    assert "oops" in (tmp_path / "worker_stderr.log").read_text()
    assert ticks and not (tmp_path / PIDFILE).exists()


def _raise_timeout(signum: int, frame: FrameType | None) -> None:
    raise TimeoutError("execution_timeout")


def test_timeout_kills_whole_group(tmp_path: Path) -> None:
    """Airflow's execution_timeout raises in the task process (SIGALRM): the whole group goes with it."""
    code = (
        "import subprocess, sys, time\n"
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "print(p.pid, flush=True); time.sleep(60)"
    )
    previous = signal.signal(signal.SIGALRM, _raise_timeout)
    signal.setitimer(signal.ITIMER_REAL, 1.5)
    try:
        with pytest.raises(TimeoutError):
            run_streaming([sys.executable, "-c", code], artifacts=tmp_path, env={}, cwd=tmp_path, label="t", tick_s=0.2)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    grandchild = int((tmp_path / "worker_stdout.log").read_text().split()[-1])
    deadline = time.monotonic() + 5
    while _alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(grandchild)


def test_leftover_group_from_dead_attempt_is_killed(tmp_path: Path) -> None:
    import subprocess

    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    (tmp_path / PIDFILE).write_text(str(p.pid))
    kill_leftover(tmp_path)
    assert p.wait(timeout=10) != 0 and not (tmp_path / PIDFILE).exists()
