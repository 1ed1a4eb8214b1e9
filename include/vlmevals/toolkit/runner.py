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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)
PR_SET_PDEATHSIG = 1
PIDFILE = "worker.pid"


@dataclass
class RunResult:
    returncode: int
    stderr_tail: str
    duration_s: float


def _die_with_parent() -> None:
    """Child pre-exec: get SIGTERM when the task process goes away (Linux)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def kill_group(pgid: int, grace_s: float = 10.0) -> None:
    """SIGTERM the group, then SIGKILL what is left after `grace_s`."""
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


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


def _pump(stream, path: Path, header: str, sink: Callable[[str], None], tail: deque[str] | None) -> None:  # type: ignore[no-untyped-def]
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
        sink(line.rstrip("\n"))
        if tail is not None:
            tail.append(line)
    if fh is not None:
        with contextlib.suppress(OSError):
            fh.close()
    stream.close()


def run_streaming(
    argv: list[str],
    *,
    artifacts: Path,
    env: dict[str, str],
    cwd: Path,
    label: str,
    on_tick: Callable[[], None] | None = None,
    tick_s: float = 2.0,
    timeout_s: float | None = None,
) -> RunResult:
    """Run `argv`, appending to worker_stdout.log / worker_stderr.log, calling `on_tick` while it runs."""
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
    pumps = [
        threading.Thread(
            target=_pump,
            args=(proc.stdout, artifacts / "worker_stdout.log", header, lambda s: log.info("[vlmeval] %s", s), None),
            daemon=True,
        ),
        threading.Thread(
            target=_pump,
            args=(
                proc.stderr,
                artifacts / "worker_stderr.log",
                header,
                lambda s: log.info("[vlmeval:err] %s", s),
                tail,
            ),
            daemon=True,
        ),
    ]
    for t in pumps:
        t.start()

    previous = signal.getsignal(signal.SIGTERM)
    in_main = threading.current_thread() is threading.main_thread()

    def _on_term(signum, frame):  # type: ignore[no-untyped-def]
        kill_group(proc.pid)
        if callable(previous):
            previous(signum, frame)
        raise SystemExit(128 + signum)

    if in_main:
        signal.signal(signal.SIGTERM, _on_term)
    try:
        while True:
            try:
                proc.wait(timeout=tick_s)
                break
            except subprocess.TimeoutExpired:
                if timeout_s is not None and time.monotonic() - started > timeout_s:
                    raise TimeoutError(f"VLMEvalKit ran longer than {timeout_s:.0f} s") from None
                if on_tick:
                    try:
                        on_tick()
                    except Exception:  # progress is best-effort; never kill a run over it
                        log.exception("progress update failed")
    finally:
        if proc.poll() is None:
            kill_group(proc.pid)
            proc.wait()
        else:  # workers it forked may outlive it
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        if in_main:
            signal.signal(signal.SIGTERM, previous)
        for t in pumps:
            t.join(timeout=5)
        (artifacts / PIDFILE).unlink(missing_ok=True)
    return RunResult(proc.returncode, "".join(tail), time.monotonic() - started)
