"""The production commands run without loading the local stack (vlmevals.devtools), VLMEvalKit or the test doubles.

Each command runs for real, in a fresh interpreter, against the session's database; the modules it loaded are
read from `sys.modules` afterwards. The static counterpart (import closure) is in tests/test_architecture.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[3]
RUN = """
import json, sys
from vlmevals.cli import main
sys.argv = ["vlmevals", *sys.argv[1:]]
try:
    main()
except SystemExit as exit:
    code = exit.code
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""
DEV_ONLY = ("vlmevals.devtools", "vlmeval", "tests")


def loaded_by(*argv: str, env: dict[str, str] | None = None) -> list[str]:
    """The modules loaded by `vlmevals *argv`, which must succeed."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "include"), "COLUMNS": "200", **(env or {})}
    res = subprocess.run([sys.executable, "-c", RUN, *argv], capture_output=True, text=True, env=env, timeout=120)
    report = json.loads(res.stdout.strip().splitlines()[-1])
    assert report["code"] in (0, None), res.stdout + res.stderr
    modules: list[str] = report["modules"]
    return modules


def is_dev_only(module: str) -> bool:
    return any(module == p or module.startswith(f"{p}.") for p in DEV_ONLY)


@pytest.mark.parametrize(
    "argv",
    [["db", "upgrade"], ["seed"], ["enrolments"], ["sync-outputs", "--json"], ["--help"]],
    ids=lambda argv: " ".join(argv),
)
def test_production_commands_load_no_dev_tooling(argv: list[str], engine: object, tmp_path: Path) -> None:
    if argv[0] == "sync-outputs":
        argv = [*argv, str(tmp_path)]
    modules = loaded_by(*argv)
    assert "vlmevals.cli" in modules
    assert [m for m in modules if is_dev_only(m)] == []


def test_the_check_sees_the_local_stack(tmp_path: Path) -> None:
    """Guard for the test above: a local-stack command run the same way is seen loading vlmevals.devtools."""
    modules = loaded_by("down", env={"EVALS_HOME": str(tmp_path / ".local")})  # nothing running: nothing to stop
    assert "vlmevals.devtools.stack" in modules and is_dev_only("vlmevals.devtools.stack")
