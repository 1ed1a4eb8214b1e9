"""Exclusive leases on a worker's GPUs.

Airflow's `gpu` pool counts slots but does not pick devices, so each inference leases the k devices it needs as
rows of `gpu_leases` (host, device) in our PostgreSQL (statements in `lease_rows`):

- exclusive: a lease is taken with `SELECT … FOR UPDATE SKIP LOCKED LIMIT k` and an UPDATE in one transaction, so
  two workers can never both take a device, and concurrent takers do not block each other on busy rows;
- durable and visible: who holds which GPU (run, task try, pid, heartbeat) is a table anyone can query, shared by
  every container of a host (set `EVALS_GPU_HOST` to the machine's name when several containers share its GPUs);
- released when the inference ends, fails or is SIGTERMed (a context manager), and reclaimed when its holder
  died without releasing: its pid is gone (checked on the holder's own node) or its heartbeat is older than
  `EVALS_GPU_LEASE_STALE_S`;
- waiters sleep on `LISTEN gpu_leases` and are woken by the `NOTIFY` of every release (`notify`), so no device
  stays idle while work waits (a poll interval covers reclaimed leases).

We chose rows over file locks because a row outlives a container, is visible from the API and to operators, and
works the same for GPU workers in several containers of one machine; flock would die with the process (no stale
leases) but cannot say who holds a GPU, and needs a shared file system for multi-container hosts.

Without GPUs (no `EVALS_GPUS`, no `nvidia-smi`, torch sees none) a worker runs models on CPU: no lease, and
`CUDA_VISIBLE_DEVICES=""`; torchrun models then run as one process. That keeps the demo model working on CPU.

Every function here takes an Engine and owns its transactions: a lease must commit the moment it is taken (so
other workers see it), its heartbeats commit while the inference runs for hours, and a release commits with the
`NOTIFY` that wakes the waiters; no caller's unit of work could hold them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from vlmevals.core.settings import GpuSettings, get_settings
from vlmevals.gpu import lease_rows as rows
from vlmevals.gpu.detect import detect_gpus
from vlmevals.gpu.notify import listening, notify, wait_for_release

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from vlmevals.vlmevalkit.command import ModelSpec

log = logging.getLogger(__name__)


class GpuUnavailable(RuntimeError):
    """No lease could be had (too few devices on this worker, or waited too long)."""


def node_name() -> str:
    return socket.gethostname()


def worker_hostname() -> str:
    """Airflow `core.hostname_callable`: `EVALS_WORKER_NAME` when set, so that two workers on one machine are told
    apart in task instance records; else the FQDN, as Airflow does by default."""
    return os.environ.get("EVALS_WORKER_NAME") or socket.getfqdn()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class Lease:
    """k devices held on `host` (empty `devices`: CPU fallback, nothing held)."""

    engine: Engine
    host: str
    devices: tuple[int, ...]
    holder: str
    heartbeat_s: float = 10.0
    _last_beat: float = field(default_factory=time.monotonic)

    @property
    def cpu_only(self) -> bool:
        return not self.devices

    @property
    def cuda_visible_devices(self) -> str:
        return ",".join(str(d) for d in self.devices)

    def env(self) -> dict[str, str]:
        """What the VLMEvalKit subprocess sees: exactly the leased devices ('' hides all GPUs)."""
        return {"CUDA_VISIBLE_DEVICES": self.cuda_visible_devices}

    def adapt(self, model: ModelSpec) -> ModelSpec:
        """torchrun needs one GPU per process (NCCL): without GPUs the model runs as one CPU process."""
        if self.cpu_only and model.launch_mode == "torchrun":
            log.warning(
                "no GPUs on this worker: running %s as one CPU process instead of torchrun", model.vlmeval_model
            )
            return dataclasses.replace(model, launch_mode="single")
        return model

    def heartbeat(self, force: bool = False) -> None:
        """Keep the lease fresh (throttled); re-take devices a reclaimer freed by mistake, complain if lost."""
        if self.cpu_only:
            return
        now = time.monotonic()
        if not force and now - self._last_beat < self.heartbeat_s:
            return
        n = rows.heartbeat(self.engine, self.host, self.devices, self.holder)
        self._last_beat = now
        if n != len(self.devices):
            log.error(
                "GPU lease %s on %s lost %d of its devices to another holder (heartbeat older than the stale timeout?)",
                self.holder,
                self.host,
                len(self.devices) - n,
            )

    def release(self) -> None:
        if self.cpu_only:
            return
        rows.release(self.engine, self.host, self.devices, self.holder)
        log.info("released GPUs %s on %s", self.cuda_visible_devices, self.host)


def reclaim_stale(engine: Engine, host: str, stale_s: float, devices: tuple[int, ...] | None = None) -> list[int]:
    """Free devices whose holder died: pid gone on this node, or no heartbeat for `stale_s`. Returns them."""
    me = node_name()
    freed: list[int] = []
    with engine.begin() as conn:
        for device, holder, pid, beat, expired in rows.held_rows(conn, host, stale_s):
            if holder is None or (devices is not None and device not in devices):
                continue
            dead = holder.split("|", 1)[0] == me and pid is not None and not _alive(pid)
            if not (expired or beat is None or dead):
                continue
            if rows.free_if_unchanged(conn, host, device, holder, beat):
                freed.append(device)
                why = f"holder pid {pid} is gone" if dead else f"no heartbeat for {stale_s:.0f} s"
                log.warning("reclaimed GPU %s on %s from %s (%s)", device, host, holder, why)
        if freed:
            notify(conn, host)
    return freed


def release_run(engine: Engine, run_id: int, wait_s: float = 10.0, poll_s: float = 0.2) -> list[str]:
    """No lease outlives its eval run's DAG run: called when the DAG run ends (the `finalize` teardown).

    An inference task killed by Airflow (Mark failed/success, a timeout) gets SIGTERM and, 5 s later, SIGKILL: its
    own `finally` may never release the lease, and Airflow may already run the teardown while it cleans up. Give
    the holder `wait_s` to release (it is ending VLMEvalKit's process group, which still uses the devices), then
    free what is left. Returns the holders freed here."""
    deadline = time.monotonic() + wait_s
    while True:
        with engine.connect() as conn:
            held = rows.held_by_run(conn, run_id)
        if not held or time.monotonic() >= deadline:
            break
        time.sleep(poll_s)
    if not held:
        return []
    with engine.begin() as conn:
        for host in rows.free_run(conn, run_id):
            notify(conn, host)
    holders = sorted({h for _, _, h in held if h})
    log.warning("eval run %s ended holding GPUs %s: freed (holders %s)", run_id, [d for _, d, _ in held], holders)
    return holders


def release_holder(engine: Engine, holder: str) -> list[str]:
    """Free what a holder (e.g. "model server 7") still holds after its task ended, however it ended."""
    with engine.begin() as conn:
        hosts = rows.free_holder(conn, holder)
        for host in hosts:
            notify(conn, host)
    if hosts:
        log.warning("%s ended holding GPUs on %s: freed", holder, ", ".join(sorted(hosts)))
    return sorted(hosts)


def _cpu_lease(engine: Engine, host: str, holder: str, settings: GpuSettings) -> Lease:
    return Lease(engine, host, (), holder, settings.heartbeat_s)


def acquire(
    engine: Engine,
    k: int,
    *,
    holder: str,
    run_id: int | None = None,
    settings: GpuSettings | None = None,
    devices: tuple[int, ...] | None = None,
    host: str | None = None,
) -> Lease:
    """Lease k of this worker's GPUs, waiting (woken by releases) up to `wait_s`; CPU fallback without GPUs."""
    settings = settings or get_settings().gpu
    host = host or settings.host or node_name()
    devices = detect_gpus(settings.gpus) if devices is None else tuple(devices)
    label = f"{node_name()}|{holder}"[:512]
    if not devices:
        log.warning(
            "no GPUs on worker %s (EVALS_GPUS unset, no nvidia-smi, torch sees none): running on CPU "
            "with CUDA_VISIBLE_DEVICES=''",
            host,
        )
        return _cpu_lease(engine, host, label, settings)
    if k > len(devices):
        raise GpuUnavailable(
            f"this model needs {k} GPUs but worker {host} has {len(devices)} ({','.join(map(str, devices))}); "
            "run it on a worker with more GPUs (route by queue) or lower the model's gpus"
        )
    rows.ensure_devices(engine, host, devices)
    return _wait_for_devices(engine, host, devices, k, label=label, run_id=run_id, settings=settings)


def _wait_for_devices(
    engine: Engine,
    host: str,
    devices: tuple[int, ...],
    k: int,
    *,
    label: str,
    run_id: int | None,
    settings: GpuSettings,
) -> Lease:
    """Try, reclaim the dead holders' devices, and sleep until a release, until `wait_s` has passed."""
    deadline = time.monotonic() + settings.wait_s
    waited = False
    with listening(engine) as listener:
        while True:
            reclaim_stale(engine, host, settings.stale_s, devices)
            got = rows.try_acquire(engine, host, devices, k, holder=label, run_id=run_id)
            if got is not None:
                log.info("leased GPUs %s on %s for %s", ",".join(map(str, got)), host, label)
                return Lease(engine, host, got, label, settings.heartbeat_s)
            left = deadline - time.monotonic()
            if left <= 0:
                raise GpuUnavailable(
                    f"no {k} free GPUs on {host} after {settings.wait_s:.0f} s; held: "
                    f"{'; '.join(rows.holders(engine, host)) or 'none'} (raise EVALS_GPU_WAIT_S, or give the pool "
                    "`gpu` no more slots than there are GPUs)"
                )
            if not waited:
                log.info("waiting for %d free GPUs on %s; held: %s", k, host, "; ".join(rows.holders(engine, host)))
                waited = True
            wait_for_release(listener, min(settings.poll_s, left))


@contextlib.contextmanager
def leased(
    engine: Engine, gpus: int, *, holder: str, run_id: int | None = None, settings: GpuSettings | None = None
) -> Iterator[Lease]:
    """Hold the model's GPUs for the duration of the block (API models with gpus=0 hold none)."""
    settings = settings or get_settings().gpu
    if gpus <= 0:
        yield _cpu_lease(engine, settings.host or node_name(), holder, settings)
        return
    lease = acquire(engine, gpus, holder=holder, run_id=run_id, settings=settings)
    try:
        yield lease
    finally:
        lease.release()
