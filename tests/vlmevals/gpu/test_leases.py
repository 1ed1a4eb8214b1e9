"""Device leases under concurrency (real PostgreSQL), and the command built per launch mode."""

from __future__ import annotations

import logging
import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from vlmevals.core.settings import GpuSettings, Settings
from vlmevals.gpu import leases as gpus
from vlmevals.gpu.leases import GpuUnavailable
from vlmevals.vlmevalkit.command import ModelSpec, TaskSpec, build_invocation

ROOT = Path(__file__).resolve().parents[3]


def _settings(devices: str = "0,1,2,3", **kw: object) -> GpuSettings:
    return GpuSettings.model_validate(
        {"EVALS_GPUS": devices, "EVALS_GPU_HOST": "node-a", "EVALS_GPU_POLL_S": 0.2, "EVALS_GPU_WAIT_S": 60, **kw}
    )


def _rows(engine) -> dict[int, tuple[str | None, int | None]]:
    with engine.connect() as conn:
        return {
            d: (h, r)
            for d, h, r in conn.execute(
                text("SELECT device, holder, run_id FROM gpu_leases WHERE host = 'node-a' ORDER BY device")
            )
        }


# --- CPU fallback (no services) ---------------------------------------------------------------------------------


def test_cpu_fallback_lease_hides_gpus_and_drops_torchrun() -> None:
    lease = gpus.acquire(None, 2, holder="t", settings=_settings("none"))
    assert lease.cpu_only and lease.env() == {"CUDA_VISIBLE_DEVICES": ""}
    assert lease.adapt(ModelSpec("M", gpus=2, launch_mode="torchrun")).launch_mode == "single"
    lease.release()  # nothing held, nothing to do


# --- command per launch mode ---------------------------------------------------------------------------------------


def _argv(model: ModelSpec, tmp_path: Path) -> list[str]:
    s = Settings.model_validate({"LMUData": str(tmp_path), "DATABASE_URL": "postgresql://x@h/db"})
    return build_invocation(
        settings=s, task=TaskSpec("MMBench_DEV_EN"), model=model, work_dir=tmp_path, mode="infer"
    ).argv


def test_command_per_launch_mode(tmp_path: Path) -> None:
    tr = _argv(ModelSpec("M", gpus=2, launch_mode="torchrun"), tmp_path)
    assert tr[1:6] == ["-m", "torch.distributed.run", "--nproc-per-node=2", "--module", "vlmeval"]
    one = _argv(ModelSpec("M", gpus=1, launch_mode="torchrun"), tmp_path)
    assert one[1:4] == ["-m", "torch.distributed.run", "--nproc-per-node=1"], "torchrun is the model's choice"
    single = _argv(ModelSpec("M", gpus=4, launch_mode="single"), tmp_path)
    assert single[3:5] == ["-m", "vlmeval"] and "torch.distributed.run" not in single, "one process sees all 4"
    lease = gpus.Lease(None, "h", (3, 5), "x")  # type: ignore[arg-type]  # env and adapt need no database
    assert lease.env() == {"CUDA_VISIBLE_DEVICES": "3,5"}
    assert lease.adapt(ModelSpec("M", gpus=2, launch_mode="torchrun")).launch_mode == "torchrun"


# --- leases on PostgreSQL ---------------------------------------------------------------------------------------

pg = pytest.mark.integration


@pg
def test_acquire_release_and_too_many(engine) -> None:
    a = gpus.acquire(engine, 2, holder="run 1", settings=_settings())
    b = gpus.acquire(engine, 2, holder="run 2", settings=_settings())
    assert set(a.devices).isdisjoint(b.devices) and len(a.devices) == len(b.devices) == 2
    rows = _rows(engine)
    assert all(h is not None for h, _ in rows.values())
    a.release()
    assert [d for d, (h, _) in _rows(engine).items() if h is None] == sorted(a.devices)
    b.release()
    with pytest.raises(GpuUnavailable, match="needs 5 GPUs but worker node-a has 4"):
        gpus.acquire(engine, 5, holder="big", settings=_settings())
    with (
        pytest.raises(GpuUnavailable, match=r"no 4 free GPUs on node-a after 0 s; held: GPU 0: run 3"),
        gpus.leased(engine, 1, holder="run 3", settings=_settings()),
    ):
        gpus.acquire(engine, 4, holder="run 4", settings=_settings(EVALS_GPU_WAIT_S=0))
    assert all(h is None for h, _ in _rows(engine).values()), "the block's lease was released on the error"


@pg
def test_many_tasks_few_gpus_never_share_a_device(db_url: str, engine) -> None:
    """20 inferences needing 1 or 2 of 3 GPUs, in threads with their own connections: at no moment do two
    holders share a device, and every task gets its GPUs."""
    big = create_engine(db_url.replace("postgresql://", "postgresql+psycopg://"), pool_size=50, max_overflow=0)
    in_use: dict[int, str] = {}
    lock = threading.Lock()
    errors: list[str] = []
    done: list[str] = []
    peak = [0]

    def work(i: int) -> None:
        k = 1 + i % 2
        rnd = random.Random(i)
        try:
            with gpus.leased(big, k, holder=f"task {i}", settings=_settings("0,1,2")) as lease:
                with lock:
                    clash = [d for d in lease.devices if d in in_use]
                    if clash or len(lease.devices) != k:
                        errors.append(f"task {i} got {lease.devices}; in use {in_use}")
                    in_use.update(dict.fromkeys(lease.devices, f"task {i}"))
                    peak[0] = max(peak[0], len(in_use))
                time.sleep(rnd.uniform(0.02, 0.15))
                with lock:
                    for d in lease.devices:
                        in_use.pop(d, None)
            done.append(f"task {i}")
        except Exception as err:
            errors.append(f"task {i}: {err!r}")

    threads = [threading.Thread(target=work, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    big.dispose()
    assert not errors, errors
    assert len(done) == 20
    assert peak[0] >= 2, "leases ran concurrently"
    assert all(h is None for h, _ in _rows(engine).values())


class _WaitingSeen(logging.Handler):
    """Sets `event` when a lease waiter logs that it starts waiting (it LISTENs before that line)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.event = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("waiting for "):
            self.event.set()


@pytest.fixture()
def waiting_seen(caplog: pytest.LogCaptureFixture) -> Iterator[threading.Event]:
    """An event set by the first waiter that starts waiting for GPUs."""
    seen = _WaitingSeen()
    caplog.set_level(logging.INFO, logger=gpus.log.name)
    gpus.log.addHandler(seen)
    try:
        yield seen.event
    finally:
        gpus.log.removeHandler(seen)


@pg
def test_release_wakes_a_waiter_at_once(engine, waiting_seen: threading.Event) -> None:
    """A waiter is woken by the release (NOTIFY), not by its poll interval: no GPU sits idle while work waits."""
    slow_poll = _settings("0,1", EVALS_GPU_POLL_S=30)
    a = gpus.acquire(engine, 1, holder="a", settings=slow_poll)
    b = gpus.acquire(engine, 1, holder="b", settings=slow_poll)
    got: list[tuple[int, ...]] = []
    t = threading.Thread(target=lambda: got.append(gpus.acquire(engine, 1, holder="c", settings=slow_poll).devices))
    t.start()
    assert waiting_seen.wait(timeout=10), "the waiter never said it waits"
    assert not got, "both GPUs are held: the waiter must wait"
    b.release()
    t.join(timeout=10)
    assert got == [b.devices], "the waiter got the released GPU long before its 30 s poll"
    a.release()


@pg
def test_stale_leases_are_reclaimed(engine) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    me = gpus.node_name()
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO gpu_leases (host, device, holder, pid, acquired_at, heartbeat_at) VALUES "
                "('node-a', 0, :dead_holder, :dead_pid, now(), now()), "  # our node, pid gone
                "('node-a', 1, 'elsewhere|run 8', 1, now(), now() - interval '1 hour'), "  # other node, silent 1 h
                "('node-a', 2, 'elsewhere|run 9', 1, now(), now())"
            ),  # other node, alive
            {"dead_holder": f"{me}|run 7", "dead_pid": dead.pid},
        )
    lease = gpus.acquire(engine, 2, holder="new", settings=_settings("0,1,2"))
    assert lease.devices == (0, 1)
    assert _rows(engine)[2][0] == "elsewhere|run 9", "a live lease on another node is left alone"
    with pytest.raises(GpuUnavailable):
        gpus.acquire(engine, 1, holder="more", settings=_settings("0,1,2", EVALS_GPU_WAIT_S=0))
    lease.release()


@pg
def test_heartbeat_keeps_a_long_lease(engine) -> None:
    lease = gpus.acquire(engine, 1, holder="long", settings=_settings("0"))
    with engine.begin() as conn:
        conn.execute(text("UPDATE gpu_leases SET heartbeat_at = now() - interval '100 s'"))
    lease.heartbeat(force=True)
    assert gpus.reclaim_stale(engine, "node-a", stale_s=60) == [], "fresh heartbeat: not stale"
    with engine.begin() as conn:
        conn.execute(text("UPDATE gpu_leases SET heartbeat_at = now() - interval '100 s'"))
    assert gpus.reclaim_stale(engine, "node-a", stale_s=60) == [0], "silent for 100 s: reclaimed"
    assert _rows(engine)[0][0] is None
    lease.heartbeat(force=True)
    assert _rows(engine)[0][0] == lease.holder, "a holder that comes back re-takes its free GPU"
    lease.release()


_HOLDER = textwrap.dedent("""
    import signal, sys, time
    from vlmevals.gpu import leases as gpus
    from vlmevals.core.settings import GpuSettings
    from vlmevals.db.engine import get_engine
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))  # as the runner does for Airflow's SIGTERM
    s = GpuSettings.model_validate({"EVALS_GPUS": "0", "EVALS_GPU_HOST": "node-a"})
    with gpus.leased(get_engine(sys.argv[1]), 1, holder="child", settings=s):
        print("held", flush=True)
        time.sleep(60)
""")


@pg
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_killed_holder_frees_its_gpu(engine, db_url: str, sig: signal.Signals) -> None:
    """SIGTERM: the holder releases on the way out. SIGKILL: its dead pid makes the lease reclaimable."""
    child = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, db_url],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "include")},
    )
    assert child.stdout is not None and child.stdout.readline().strip() == "held"
    assert _rows(engine)[0][0] is not None
    child.send_signal(sig)
    child.wait(timeout=30)
    if sig == signal.SIGTERM:
        assert _rows(engine)[0][0] is None, "released by the holder itself"
    else:
        assert _rows(engine)[0][0] is not None, "a SIGKILLed holder cannot release"
    lease = gpus.acquire(engine, 1, holder="next", settings=_settings("0", EVALS_GPU_WAIT_S=5))
    assert lease.devices == (0,)
    lease.release()
