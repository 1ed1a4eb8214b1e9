"""Running VLMEvalKit as a subprocess: its own process group, output teed to the artifacts folder and the
task log, and a clean kill of the whole group however the task ends (SIGTERM from Airflow, a timeout, an
exception, or the task process dying, via PR_SET_PDEATHSIG)."""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from threading import Thread
from types import FrameType
from typing import IO

from vlmevals.core.constants import WORKER_STDERR_LOG, WORKER_STDOUT_LOG

log = logging.getLogger(__name__)
PR_SET_PDEATHSIG = 1
PIDFILE = "worker.pid"
TERM_GRACE_S = 3.0
"""VLMEvalKit's grace after Airflow's SIGTERM: shorter than the 5 s after which Airflow's task supervisor
SIGKILLs the task process ("Mark failed/success", timeouts), so our cleanup (the GPU lease release) still runs."""


@dataclass
class RunResult:
    returncode: int
    stderr_tail: str
    duration_s: float


def _die_with_parent() -> None:
    """Child pre-exec: get SIGTERM when the task process goes away (Linux)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def group_alive(pgid: int) -> bool:
    """Whether process group `pgid` still has a member we may signal."""
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def kill_groups(groups: set[int], grace_s: float = 10.0) -> None:
    """SIGTERM every group at once, then SIGKILL what is left after `grace_s`."""
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    left = {g for g in groups if group_alive(g)}
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = {g for g in left if group_alive(g)}
    for pgid in left:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)


def kill_group(pgid: int, grace_s: float = 10.0) -> None:
    kill_groups({pgid}, grace_s)


def kill_leftover(artifacts: Path) -> None:
    """A previous attempt whose task process was SIGKILLed may leave its group running: end it first."""
    pidfile = artifacts / PIDFILE
    if not pidfile.exists():
        return
    try:
        pgid = int(pidfile.read_text().strip())
        os.killpg(pgid, 0)
    except (ValueError, ProcessLookupError, PermissionError):
        pidfile.unlink(missing_ok=True)
        return
    log.warning("killing leftover VLMEvalKit process group %s from an earlier attempt", pgid)
    kill_group(pgid, grace_s=5)
    pidfile.unlink(missing_ok=True)


def _pump(stream: IO[bytes], path: Path, header: str, prefix: str, tail: deque[str] | None) -> None:
    """Tee one pipe to its log file. Keeps draining if the file cannot be written (full disk): a pump that stopped
    reading would leave VLMEvalKit blocked on a full pipe, and the tail must still carry its error message."""
    fh = None
    with contextlib.suppress(OSError):
        fh = path.open("a", encoding="utf-8", errors="replace")
        fh.write(header)
        fh.flush()
    for raw in iter(stream.readline, b""):
        line = raw.decode("utf-8", errors="replace")
        if fh is not None:
            try:
                fh.write(line)
                fh.flush()
            except OSError as err:
                log.warning("cannot write %s (%s); its output goes to the task log only", path, err)
                with contextlib.suppress(OSError):
                    fh.close()
                fh = None
        log.info("%s %s", prefix, line.rstrip("\n"))
        if tail is not None:
            tail.append(line)
    if fh is not None:
        with contextlib.suppress(OSError):
            fh.close()
    stream.close()


class AbortRun(Exception):
    """Raised by an `on_tick` callback to end the process group now (e.g. the model server it calls is gone);
    any other error of a callback is logged and the run goes on."""


def run_streaming(
    argv: list[str],
    *,
    artifacts: Path,
    env: dict[str, str],
    cwd: Path,
    label: str,
    on_tick: Callable[[], None] | None = None,
    tick_s: float = 2.0,
) -> RunResult:
    """Run `argv`, appending to worker_stdout.log / worker_stderr.log, calling `on_tick` while it runs.

    Time limits are Airflow's (`execution_timeout` raises in this process): however the wait ends, the whole
    process group goes."""
    artifacts.mkdir(parents=True, exist_ok=True)
    kill_leftover(artifacts)
    started = time.monotonic()
    header = f"\n===== {label} @ {time.strftime('%Y-%m-%dT%H:%M:%S%z')} =====\n"
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        preexec_fn=_die_with_parent,
    )
    with contextlib.suppress(OSError):  # a full disk must not orphan the process before the pumps drain it
        (artifacts / PIDFILE).write_text(str(proc.pid))
    tail: deque[str] = deque(maxlen=60)
    pumps = _start_pumps(proc, artifacts, header, tail)
    try:
        with sigterm_exits(lambda: kill_group(proc.pid, grace_s=TERM_GRACE_S)):  # the group ends first
            _wait(proc, on_tick, tick_s)
    finally:
        _reap(proc)
        for t in pumps:
            t.join(timeout=5)
        (artifacts / PIDFILE).unlink(missing_ok=True)
    return RunResult(proc.returncode, "".join(tail), time.monotonic() - started)


def _start_pumps(proc: subprocess.Popen[bytes], artifacts: Path, header: str, tail: deque[str]) -> list[Thread]:
    """One thread per pipe; stderr also fills `tail` (the error message for the run record)."""
    assert proc.stdout is not None and proc.stderr is not None
    pumps = [
        Thread(target=_pump, args=(proc.stdout, artifacts / WORKER_STDOUT_LOG, header, "[vlmeval]", None)),
        Thread(target=_pump, args=(proc.stderr, artifacts / WORKER_STDERR_LOG, header, "[vlmeval:err]", tail)),
    ]
    for t in pumps:
        t.daemon = True
        t.start()
    return pumps


@contextlib.contextmanager
def sigterm_exits(before: Callable[[], None] | None = None) -> Iterator[None]:
    """While the block runs, SIGTERM (Airflow ending a task: it only calls `on_kill`, then SIGKILLs seconds later)
    calls `before`, then raises SystemExit so the block's cleanup runs. Main thread only: Python accepts signal
    handlers nowhere else."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)

    def _on_term(signum: int, frame: FrameType | None) -> None:
        if before is not None:
            before()
        if callable(previous):
            previous(signum, frame)
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _on_term)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _wait(proc: subprocess.Popen[bytes], on_tick: Callable[[], None] | None, tick_s: float) -> None:
    while True:
        try:
            proc.wait(timeout=tick_s)
            return
        except subprocess.TimeoutExpired:
            if on_tick:
                try:
                    on_tick()
                except AbortRun:
                    raise
                except Exception:  # progress is best-effort; never kill a run over it
                    log.exception("progress update failed")


def _reap(proc: subprocess.Popen[bytes]) -> None:
    """End the group: kill a process still running (we are leaving on an exception), else the workers it forked,
    which may outlive it."""
    if proc.poll() is None:
        kill_group(proc.pid)
        proc.wait()
    else:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
