"""GPU devices of a worker and exclusive leases on them.

Airflow's `gpu` pool counts slots but does not pick devices, so each inference leases the k devices it needs as
rows of `gpu_leases` (host, device) in our PostgreSQL:

- exclusive: a lease is taken with `SELECT … FOR UPDATE SKIP LOCKED LIMIT k` and an UPDATE in one transaction, so
  two workers can never both take a device, and concurrent takers do not block each other on busy rows;
- durable and visible: who holds which GPU (run, task try, pid, heartbeat) is a table anyone can query, shared by
  every container of a host (set `EVALS_GPU_HOST` to the machine's name when several containers share its GPUs);
- released when the inference ends, fails or is SIGTERMed (a context manager), and reclaimed when its holder
  died without releasing: its pid is gone (checked on the holder's own node) or its heartbeat is older than
  `EVALS_GPU_LEASE_STALE_S`;
- waiters sleep on `LISTEN gpu_leases` and are woken by the `NOTIFY` of every release, so no device stays idle
  while work waits (a poll interval covers reclaimed leases).

We chose rows over file locks because a row outlives a container, is visible from the API and to operators, and
works the same for GPU workers in several containers of one machine; flock would die with the process (no stale
leases) but cannot say who holds a GPU, and needs a shared file system for multi-container hosts.

Without GPUs (no `EVALS_GPUS`, no `nvidia-smi`, torch sees none) a worker runs models on CPU: no lease, and
`CUDA_VISIBLE_DEVICES=""`; torchrun models then run as one process. That keeps the demo model working on CPU.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from vlmevals.toolkit.command import ModelSpec

log = logging.getLogger(__name__)
CHANNEL = "gpu_leases"


class GpuSettings(BaseSettings):
    """How a worker finds its GPUs and how long leases live."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    gpus: str | None = Field(
        default=None,
        alias="EVALS_GPUS",
        description="Device indices of this worker ('0,1,3'); 'none' for CPU only; unset: detect",
    )
    host: str | None = Field(
        default=None,
        alias="EVALS_GPU_HOST",
        description="Lease namespace: the machine owning the GPUs (default: hostname)",
    )
    stale_s: float = Field(default=120.0, gt=0, alias="EVALS_GPU_LEASE_STALE_S")
    heartbeat_s: float = Field(default=10.0, gt=0, alias="EVALS_GPU_HEARTBEAT_S")
    wait_s: float = Field(default=6 * 3600.0, ge=0, alias="EVALS_GPU_WAIT_S")
    poll_s: float = Field(default=5.0, gt=0, alias="EVALS_GPU_POLL_S")

    @field_validator("gpus", "host", mode="before")
    @classmethod
    def _empty_is_unset(cls, v: object) -> object:
        # compose passes unset settings as "": detect / default, not "no GPUs"
        return None if isinstance(v, str) and not v.strip() else v


class GpuUnavailable(RuntimeError):
    """No lease could be had (too few devices on this worker, or waited too long)."""


def node_name() -> str:
    return socket.gethostname()


def worker_hostname() -> str:
    """Airflow `core.hostname_callable`: `EVALS_WORKER_NAME` when set, so that two workers on one machine are told
    apart in task instance records; else the FQDN, as Airflow does by default."""
    return os.environ.get("EVALS_WORKER_NAME") or socket.getfqdn()


def parse_devices(spec: str) -> list[int]:
    """'0,1,3' -> [0, 1, 3]; 'none' / 'cpu' / '' -> []."""
    text = spec.strip().lower()
    if text in ("", "none", "cpu", "-1"):
        return []
    try:
        devices = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ValueError(f"EVALS_GPUS={spec!r} is not a list of device indices; use e.g. '0,1' or 'none'") from None
    if any(d < 0 for d in devices) or len(set(devices)) != len(devices):
        raise ValueError(f"EVALS_GPUS={spec!r} has negative or repeated indices; use e.g. '0,1' or 'none'")
    return devices


def _nvidia_smi() -> list[int] | None:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        res = subprocess.run(
            [exe, "--query-gpu=index", "--format=csv,noheader"], capture_output=True, text=True, timeout=20
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        log.warning("nvidia-smi failed (%s); trying torch", err)
        return None
    if res.returncode != 0:
        log.warning("nvidia-smi exited %s: %s; trying torch", res.returncode, res.stderr.strip()[:200])
        return None
    return [int(x) for x in res.stdout.split() if x.strip().isdigit()]


def _driver_present() -> bool:
    return Path("/dev/nvidiactl").exists() or Path("/proc/driver/nvidia").exists()


def _torch_count() -> int:
    import torch

    return int(torch.cuda.device_count())


@lru_cache(maxsize=4)
def detect_gpus(spec: str | None = None) -> tuple[int, ...]:
    """This worker's GPUs: `EVALS_GPUS`, else integer `CUDA_VISIBLE_DEVICES` given to the worker, else nvidia-smi,
    else torch (only when an NVIDIA driver is present; importing torch costs seconds), else none."""
    if spec is not None:
        return tuple(parse_devices(spec))
    cvd = os.environ.get("CUDA_VISIBLE_DEVICES")
    if cvd is not None:
        try:
            return tuple(parse_devices(cvd))
        except ValueError:
            log.warning("CUDA_VISIBLE_DEVICES=%r is not a list of indices (UUIDs?); detecting instead", cvd)
    found = _nvidia_smi()
    if found is not None:
        return tuple(found)
    if _driver_present():
        with contextlib.suppress(Exception):
            return tuple(range(_torch_count()))
    return ()


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

    engine: Engine | None
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
        if self.cpu_only or self.engine is None:
            return
        now = time.monotonic()
        if not force and now - self._last_beat < self.heartbeat_s:
            return
        from sqlalchemy import text

        with self.engine.begin() as conn:
            n = conn.execute(
                text(
                    "UPDATE gpu_leases SET heartbeat_at = now(), holder = :holder, pid = :pid, "
                    "acquired_at = coalesce(acquired_at, now()) "
                    "WHERE host = :host AND device = ANY(:devices) AND (holder = :holder OR holder IS NULL)"
                ),
                {"holder": self.holder, "pid": os.getpid(), "host": self.host, "devices": list(self.devices)},
            ).rowcount
        self._last_beat = now
        if n != len(self.devices):
            log.error(
                "GPU lease %s on %s lost %d of its devices to another holder (heartbeat older than the stale timeout?)",
                self.holder,
                self.host,
                len(self.devices) - n,
            )

    def release(self) -> None:
        if self.cpu_only or self.engine is None:
            return
        from sqlalchemy import text

        with self.engine.begin() as conn:
            conn.execute(
                text(
                    "UPDATE gpu_leases SET holder = NULL, run_id = NULL, pid = NULL, acquired_at = NULL, "
                    "heartbeat_at = NULL WHERE host = :host AND device = ANY(:devices) AND holder = :holder"
                ),
                {"host": self.host, "devices": list(self.devices), "holder": self.holder},
            )
            conn.execute(text("SELECT pg_notify(:ch, :host)"), {"ch": CHANNEL, "host": self.host})
        log.info("released GPUs %s on %s", self.cuda_visible_devices, self.host)


def ensure_devices(engine: Engine, host: str, devices: tuple[int, ...]) -> None:
    """One row per device of this host (idempotent)."""
    if not devices:
        return
    from sqlalchemy import text

    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO gpu_leases (host, device) "
                "SELECT :host, d FROM unnest(CAST(:devices AS int[])) d ON CONFLICT DO NOTHING"
            ),
            {"host": host, "devices": list(devices)},
        )


def reclaim_stale(engine: Engine, host: str, stale_s: float, devices: tuple[int, ...] | None = None) -> list[int]:
    """Free devices whose holder died: pid gone on this node, or no heartbeat for `stale_s`. Returns them."""
    from sqlalchemy import text

    me = node_name()
    freed: list[int] = []
    with engine.begin() as conn:
        rows = conn.execute(
            text(
                "SELECT device, holder, pid, heartbeat_at, heartbeat_at < now() - make_interval(secs => :s) AS expired "
                "FROM gpu_leases WHERE host = :host AND holder IS NOT NULL"
            ),
            {"host": host, "s": stale_s},
        ).all()
        for device, holder, pid, beat, expired in rows:
            if devices is not None and device not in devices:
                continue
            same_node = holder.split("|", 1)[0] == me
            dead = same_node and pid is not None and not _alive(pid)
            if not (expired or beat is None or dead):
                continue
            n = conn.execute(
                text(
                    "UPDATE gpu_leases SET holder = NULL, run_id = NULL, pid = NULL, acquired_at = NULL, "
                    "heartbeat_at = NULL WHERE host = :host AND device = :device AND holder = :holder "
                    "AND heartbeat_at IS NOT DISTINCT FROM CAST(:beat AS timestamptz)"
                ),
                {"host": host, "device": device, "holder": holder, "beat": beat},
            ).rowcount
            if n:
                freed.append(device)
                log.warning(
                    "reclaimed GPU %s on %s from %s (%s)",
                    device,
                    host,
                    holder,
                    f"holder pid {pid} is gone" if dead else f"no heartbeat for {stale_s:.0f} s",
                )
        if freed:
            conn.execute(text("SELECT pg_notify(:ch, :host)"), {"ch": CHANNEL, "host": host})
    return freed


def try_acquire(
    engine: Engine, host: str, devices: tuple[int, ...], k: int, *, holder: str, run_id: int | None
) -> tuple[int, ...] | None:
    """Take k free devices in one transaction, or none at all."""
    from sqlalchemy import text

    with engine.connect() as conn:
        got = (
            conn.execute(
                text(
                    "WITH free AS (SELECT host, device FROM gpu_leases WHERE host = :host AND device = ANY(:devices) "
                    "AND holder IS NULL ORDER BY device LIMIT :k FOR UPDATE SKIP LOCKED) "
                    "UPDATE gpu_leases g SET holder = :holder, run_id = :run_id, pid = :pid, acquired_at = now(), "
                    "heartbeat_at = now() FROM free WHERE g.host = free.host AND g.device = free.device "
                    "RETURNING g.device"
                ),
                {
                    "host": host,
                    "devices": list(devices),
                    "k": k,
                    "holder": holder,
                    "run_id": run_id,
                    "pid": os.getpid(),
                },
            )
            .scalars()
            .all()
        )
        if len(got) < k:
            conn.rollback()
            return None
        conn.commit()
    return tuple(sorted(got))


def holders(engine: Engine, host: str) -> list[str]:
    from sqlalchemy import text

    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT device, holder FROM gpu_leases WHERE host = :host AND holder IS NOT NULL ORDER BY device"),
            {"host": host},
        ).all()
    return [f"GPU {d}: {h.split('|', 1)[-1]}" for d, h in rows]


@contextlib.contextmanager
def _listener(engine: Engine) -> Iterator[object]:
    """A raw psycopg connection listening on the release channel (None if the driver cannot LISTEN)."""
    raw = engine.raw_connection()
    try:
        dbapi = raw.driver_connection
        try:
            dbapi.autocommit = True  # type: ignore[union-attr]
            dbapi.execute(f"LISTEN {CHANNEL}")  # type: ignore[union-attr]
        except Exception:  # not psycopg 3: fall back to polling
            dbapi = None
        yield dbapi
    finally:
        with contextlib.suppress(Exception):
            if raw.driver_connection is not None:
                raw.driver_connection.execute(f"UNLISTEN {CHANNEL}")  # type: ignore[union-attr]
                raw.driver_connection.autocommit = False  # type: ignore[union-attr]
        raw.close()


def _wait(listener: object, timeout_s: float) -> None:
    if listener is None or timeout_s <= 0:
        time.sleep(max(0.0, min(timeout_s, 1.0)))
        return
    for _ in listener.notifies(timeout=timeout_s, stop_after=1):  # type: ignore[attr-defined]
        break


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
    settings = settings or GpuSettings()
    host = host or settings.host or node_name()
    devices = detect_gpus(settings.gpus) if devices is None else tuple(devices)
    label = f"{node_name()}|{holder}"[:512]
    if not devices:
        log.warning(
            "no GPUs on worker %s (EVALS_GPUS unset, no nvidia-smi, torch sees none): running on CPU "
            "with CUDA_VISIBLE_DEVICES=''",
            host,
        )
        return Lease(None, host, (), label, settings.heartbeat_s)
    if k > len(devices):
        raise GpuUnavailable(
            f"this model needs {k} GPUs but worker {host} has {len(devices)} ({','.join(map(str, devices))}); "
            "run it on a worker with more GPUs (route by queue) or lower the model's gpus"
        )
    ensure_devices(engine, host, devices)
    deadline = time.monotonic() + settings.wait_s
    waited = False
    with _listener(engine) as listener:
        while True:
            reclaim_stale(engine, host, settings.stale_s, devices)
            got = try_acquire(engine, host, devices, k, holder=label, run_id=run_id)
            if got is not None:
                log.info("leased GPUs %s on %s for %s", ",".join(map(str, got)), host, holder)
                return Lease(engine, host, got, label, settings.heartbeat_s)
            left = deadline - time.monotonic()
            if left <= 0:
                raise GpuUnavailable(
                    f"no {k} free GPUs on {host} after {settings.wait_s:.0f} s; held: "
                    f"{'; '.join(holders(engine, host)) or 'none'} (raise EVALS_GPU_WAIT_S, or give the pool "
                    "`gpu` no more slots than there are GPUs)"
                )
            if not waited:
                log.info("waiting for %d free GPUs on %s; held: %s", k, host, "; ".join(holders(engine, host)))
                waited = True
            _wait(listener, min(settings.poll_s, left))


@contextlib.contextmanager
def leased(
    engine: Engine | None, gpus: int, *, holder: str, run_id: int | None = None, settings: GpuSettings | None = None
) -> Iterator[Lease]:
    """Hold the model's GPUs for the duration of the block (API models with gpus=0 hold none)."""
    settings = settings or GpuSettings()
    if gpus <= 0:
        yield Lease(None, settings.host or node_name(), (), holder, settings.heartbeat_s)
        return
    if engine is None:
        from vlmevals.db.engine import get_engine

        engine = get_engine()
    lease = acquire(engine, gpus, holder=holder, run_id=run_id, settings=settings)
    try:
        yield lease
    finally:
        lease.release()
