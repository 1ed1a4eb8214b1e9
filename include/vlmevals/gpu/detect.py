"""Which GPUs a worker has: the one place that asks `nvidia-smi` (leases, fingerprints and the CLI all call it)."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GpuDevice:
    index: int
    name: str


def nvidia_smi() -> list[GpuDevice] | None:
    """The devices `nvidia-smi` lists (index, name); None when it is missing or fails."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        res = subprocess.run(
            [exe, "--query-gpu=index,name", "--format=csv,noheader"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        log.warning("nvidia-smi failed (%s)", err)
        return None
    if res.returncode != 0:
        log.warning("nvidia-smi exited %s: %s", res.returncode, res.stderr.strip()[:200])
        return None
    devices = []
    for line in res.stdout.splitlines():  # "0, NVIDIA H200"
        index, _, name = line.partition(",")
        if index.strip().isdigit():
            devices.append(GpuDevice(int(index), name.strip()))
    return devices


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
    found = nvidia_smi()
    if found is not None:
        return tuple(d.index for d in found)
    if _driver_present():
        with contextlib.suppress(Exception):
            return tuple(range(_torch_count()))
    return ()
