"""GPU detection: EVALS_GPUS, CUDA_VISIBLE_DEVICES, nvidia-smi (devices with their names), torch, none."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from vlmevals.gpu import detect
from vlmevals.gpu.detect import GpuDevice
from vlmevals.results.fingerprint import gpu_part

# nvidia-smi speaking its real CSV output format
FAKE_SMI = (
    "#!/bin/sh\n[ \"$1\" = --query-gpu=index,name ] && printf '0, NVIDIA H200\\n1, NVIDIA H200\\n2, NVIDIA A10\\n'\n"
)


def _fake_smi(monkeypatch: pytest.MonkeyPatch, folder: Path, script: str = FAKE_SMI) -> Path:
    fake = folder / "nvidia-smi"
    fake.write_text(script)
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    return fake


def test_parse_devices() -> None:
    assert detect.parse_devices("0, 1,3") == [0, 1, 3]
    assert detect.parse_devices("none") == [] and detect.parse_devices("") == []
    with pytest.raises(ValueError, match="EVALS_GPUS='a,b' is not a list of device indices"):
        detect.parse_devices("a,b")
    with pytest.raises(ValueError, match="repeated"):
        detect.parse_devices("1,1")


def test_detect_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    detect.detect_gpus.cache_clear()
    assert detect.detect_gpus("2,5") == (2, 5)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,6")
    assert detect.detect_gpus(None) == (4, 6), "a worker started with CUDA_VISIBLE_DEVICES owns exactly those"
    detect.detect_gpus.cache_clear()
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    fake = _fake_smi(monkeypatch, tmp_path)
    assert detect.detect_gpus(None) == (0, 1, 2)
    detect.detect_gpus.cache_clear()
    fake.unlink()
    monkeypatch.setattr(detect, "_driver_present", lambda: True)
    monkeypatch.setattr(detect, "_torch_count", lambda: 2)
    assert detect.detect_gpus(None) == (0, 1), "torch when there is a driver but no nvidia-smi"
    detect.detect_gpus.cache_clear()
    monkeypatch.setattr(detect, "_driver_present", lambda: False)
    assert detect.detect_gpus(None) == (), "CPU-only machine"
    detect.detect_gpus.cache_clear()


def test_nvidia_smi_names_feed_the_fingerprint(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = _fake_smi(monkeypatch, tmp_path)
    assert detect.nvidia_smi() == [GpuDevice(0, "NVIDIA H200"), GpuDevice(1, "NVIDIA H200"), GpuDevice(2, "NVIDIA A10")]
    assert gpu_part() == {"gpus": 3, "names": ["NVIDIA A10", "NVIDIA H200"]}
    assert gpu_part("0,1") == {"gpus": 2, "names": ["NVIDIA H200"]}, "only the leased devices"
    assert gpu_part("") == {"gpus": 0, "names": []}, "a CPU lease sees none"
    fake.write_text("#!/bin/sh\necho 'NVIDIA-SMI has failed' >&2; exit 9\n")
    assert detect.nvidia_smi() is None and gpu_part() == {"gpus": 0, "names": []}
    fake.unlink()
    monkeypatch.setenv("PATH", str(tmp_path))
    assert detect.nvidia_smi() is None, "no nvidia-smi on the PATH"
