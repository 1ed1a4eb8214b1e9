"""VLMEvalKit and library versions, probed in our interpreter or another one, cached per interpreter."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from vlmevals.vlmevalkit import versions


def _clear() -> None:
    versions.package_versions.cache_clear()
    versions.vlmeval_version.cache_clear()


def test_another_interpreter_reports_what_ours_does(tmp_path: Path) -> None:
    _clear()
    other = tmp_path / "python"
    other.write_text(f'#!/bin/sh\nexec {sys.executable} "$@"\n')  # another path: probed in a subprocess
    other.chmod(0o755)
    ours = versions.package_versions(sys.executable)
    assert set(ours) == {"python", *versions.PROBED_DISTS}
    assert versions.package_versions(str(other)) == ours
    assert versions.vlmeval_version(str(other), None) == versions.vlmeval_version(sys.executable, None)
    mine = ours[versions.VLMEVAL_DIST]
    assert versions.vlmeval_version(sys.executable, None) == (f"ms-vlmeval=={mine}" if mine else "unknown")


def test_broken_interpreter_and_checkout(tmp_path: Path) -> None:
    _clear()
    broken = str(tmp_path / "no-such-python")
    assert set(versions.package_versions(broken)) == {"python"}, "the environment is informative only"
    assert versions.vlmeval_version(broken, None) == "unknown"
    assert versions.vlmeval_version(broken, str(tmp_path)) == f"checkout:{tmp_path}", "not a git checkout"
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    env = ["-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "-C", str(tmp_path), *env, "commit", "-q", "--allow-empty", "-m", "x"], check=True)
    head = subprocess.run(["git", "-C", str(tmp_path), "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    versions.vlmeval_version.cache_clear()
    assert versions.vlmeval_version(broken, str(tmp_path)) == f"git:{head.strip()[:12]}"
