"""A managed engine process: started in its own process group with its output in a log file, ready once its health
route answers, stopped with its whole group (engines fork workers: vLLM's engine core, SGLang's schedulers).

Every failure (the engine exits, does not answer within its start-up timeout, or its port is taken) raises
`EngineStartError` naming the engine, its command line and the tail of its log, and leaves no process behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from vlmevals.serving.engines import EngineLaunch
from vlmevals.vlmevalkit.runner import group_alive, kill_groups

STOP_GRACE_S = 10.0
LOG_TAIL_LINES = 30


class EngineStartError(RuntimeError):
    """The engine did not come up; the message carries what a person needs to fix it."""


class EngineDiedError(RuntimeError):
    """A started engine is gone."""


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


def _failure(launch: EngineLaunch, log_path: Path, what: str) -> str:
    return (
        f"engine {launch.engine} {what}\ncommand: {launch.command_line()}\nlog {log_path} (last lines):\n"
        f"{log_tail(log_path)}"
    )


def port_free(host: str, port: int) -> bool:
    """Whether a server could listen on host:port now (SO_REUSEADDR, as uvicorn binds)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:
    """Child pre-exec: SIGTERM when the process that started the engine goes away (Linux), so a SIGKILLed task
    process does not leave the engine holding its GPUs."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class ManagedServer:
    """A started engine; `stop()` ends it and every process of its group."""

    launch: EngineLaunch
    process: subprocess.Popen[bytes]
    log_path: Path
    started_at: float = field(default_factory=time.time)

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def check(self) -> None:
        """Raise `EngineDiedError` if the engine exited (killed, crashed, out of memory)."""
        code = self.process.poll()
        if code is not None:
            how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
            raise EngineDiedError(_failure(self.launch, self.log_path, how))

    def stop(self, grace_s: float = STOP_GRACE_S) -> int | None:
        """SIGTERM the group, SIGKILL what is left after `grace_s`; returns the engine's exit status."""
        # reap the engine as it exits: unreaped, it stays in the group as a zombie and the wait lasts the whole grace
        threading.Thread(target=self.process.wait, daemon=True).start()
        kill_groups({self.pid}, grace_s)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=grace_s)
        return self.process.poll()

    def group_alive(self) -> bool:
        """Whether any process of the engine's group (its workers included) still runs."""
        return group_alive(self.pid)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def _link_weights(launch: EngineLaunch, workdir: Path, log_path: Path) -> None:
    """The links an engine loads its weights through (EngineLaunch.links), made afresh in its working folder."""
    for name, target in launch.links.items():
        if not Path(target).is_dir():
            raise EngineStartError(
                _failure(launch, log_path, f"needs the weights as a local folder; {target} is none (a Hub repo: "
                         "prefetch it and give the snapshot folder)")
            )  # fmt: skip
        link = workdir / name
        if link.is_symlink():
            link.unlink()
        link.symlink_to(target, target_is_directory=True)


def start(
    launch: EngineLaunch,
    log_path: Path,
    *,
    startup_timeout_s: float,
    env: Mapping[str, str] | None = None,
    poll_s: float = 0.5,
) -> ManagedServer:
    """Start the engine in the folder of its log and wait until its health route answers; on failure stop it and
    raise EngineStartError."""
    if not port_free(launch.host, launch.port):
        raise EngineStartError(
            _failure(launch, log_path, f"cannot start: port {launch.port} on {launch.host} is taken")
        )
    workdir = log_path.parent
    workdir.mkdir(parents=True, exist_ok=True)
    _link_weights(launch, workdir, log_path)
    with log_path.open("ab") as log:
        log.write(f"$ {launch.command_line()}\n".encode())
        log.flush()
        try:
            proc = subprocess.Popen(
                launch.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=workdir,
                env={**os.environ, **(env or {})},
                start_new_session=True,  # its own process group: stop() ends its workers too
                preexec_fn=_die_with_parent,
            )
        except OSError as err:
            raise EngineStartError(_failure(launch, log_path, f"cannot be started ({err})")) from err
    server = ManagedServer(launch, proc, log_path)
    deadline = time.monotonic() + startup_timeout_s
    try:
        while True:
            if proc.poll() is not None:
                server.check()
            if _answers(launch.health_url):
                server.check()  # the answer came from our engine, not from one that took the port meanwhile
                return server
            if time.monotonic() >= deadline:
                raise EngineStartError(
                    _failure(launch, log_path, f"did not answer {launch.health_url} within {startup_timeout_s:g} s")
                )
            time.sleep(poll_s)
    except EngineDiedError as err:
        server.stop()
        raise EngineStartError(str(err)) from None
    except BaseException:
        server.stop()
        raise
