"""A component SIGKILLed alone leaves its children in its old process group (LocalExecutor workers, serve-logs
holding port 8793); the stack's stop ends every group it started, not only the one of its last pid."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from vlmevals.devtools.process_groups import GroupLog
from vlmevals.devtools.stack import Stack
from vlmevals.devtools.stack_settings import StackSettings
from vlmevals.vlmevalkit.runner import group_alive, kill_groups

# a leader in its own session that forks a long-lived child (as the scheduler forks its workers), then waits
LEADER = """
import os, time
if os.fork() == 0:
    time.sleep(300)
else:
    print("forked", flush=True)
    time.sleep(300)
"""


def _orphaned_group() -> int:
    """A group whose leader was SIGKILLed (the OOM killer's way) while its child lives on."""
    leader = subprocess.Popen([sys.executable, "-c", LEADER], start_new_session=True, stdout=subprocess.PIPE)
    assert leader.stdout is not None and leader.stdout.readline().strip() == b"forked"
    os.kill(leader.pid, signal.SIGKILL)
    leader.wait()
    assert group_alive(leader.pid), "the child lives on in the dead leader's group"
    return leader.pid


def _wait_gone(pgid: int, timeout_s: float = 10) -> bool:
    deadline = time.monotonic() + timeout_s
    while group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not group_alive(pgid)


def test_the_log_keeps_live_groups_and_drops_ended_ones(tmp_path: Path) -> None:
    log = GroupLog(tmp_path / "run" / "scheduler.groups")
    assert log.live() == set()
    pgid = _orphaned_group()
    try:
        log.add(pgid)
        log.add(2**22 + 7)  # no such group (above the default pid_max): dropped on the next read
        assert log.live() == {pgid}
    finally:
        kill_groups({pgid}, grace_s=5)
    assert _wait_gone(pgid)
    assert log.live() == set()
    log.clear()
    assert not log.path.exists()


def test_stop_ends_the_group_a_killed_component_left_behind(tmp_path: Path) -> None:
    stack = Stack(StackSettings.model_validate({"EVALS_HOME": str(tmp_path / "home")}))
    pgid = _orphaned_group()
    try:
        stack._groups("scheduler").add(pgid)  # what start_component recorded before the scheduler was killed
        assert stack.pid("scheduler") is None, "no pid file: the component itself is gone"
        assert stack.stop(database=False, grace_s=5) == []
        assert _wait_gone(pgid), "its orphaned child was ended with it"
        assert not (tmp_path / "home" / "run" / "scheduler.groups").exists()
    finally:
        if group_alive(pgid):
            os.killpg(pgid, signal.SIGKILL)


@pytest.mark.parametrize("sig_ignored", [True, False])
def test_kill_groups_escalates_to_sigkill(sig_ignored: bool) -> None:
    code = "import signal, time\n" + ("signal.signal(signal.SIGTERM, signal.SIG_IGN)\n" if sig_ignored else "")
    proc = subprocess.Popen([sys.executable, "-c", code + "print('up', flush=True)\ntime.sleep(300)"],
                            start_new_session=True, stdout=subprocess.PIPE)  # fmt: skip
    assert proc.stdout is not None and proc.stdout.readline().strip() == b"up"
    kill_groups({proc.pid}, grace_s=1)
    assert proc.wait(timeout=10) == (-signal.SIGKILL if sig_ignored else -signal.SIGTERM)


def test_starting_a_killed_component_first_ends_what_it_left_behind(tmp_path: Path, monkeypatch) -> None:
    """A scheduler SIGKILLed mid-transaction leaves workers holding its database socket (its transaction stays open
    with the pool locks): starting it again must end them before the new process starts."""
    stack = Stack(StackSettings.model_validate({"EVALS_HOME": str(tmp_path / "home")}))
    monkeypatch.setattr(Stack, "env", lambda self: {"AIRFLOW_HOME": str(tmp_path)})
    pgid = _orphaned_group()
    seen: list[bool] = []

    class Started:
        pid = 2**22 + 11  # no such process: the new component is not really started

        def __init__(self, *args: object, **kwargs: object) -> None:
            seen.append(group_alive(pgid))

    monkeypatch.setattr("vlmevals.devtools.stack.subprocess.Popen", Started)
    try:
        stack._groups("scheduler").add(pgid)
        assert stack.pid("scheduler") is None
        stack.start_component("scheduler")
        assert _wait_gone(pgid)
        assert seen == [False], "the orphaned group was ended before the new scheduler started"
        assert stack._groups("scheduler").live() == set(), "only the new start is remembered"
    finally:
        if group_alive(pgid):
            os.killpg(pgid, signal.SIGKILL)
