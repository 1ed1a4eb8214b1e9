"""The launcher VLMEvalKit runs behind must behave exactly like `python -m pkg` / `python run.py`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from vlmevals.vlmevalkit.command import FREEZE_AT_EXIT


def _run(cwd: Path, *entry: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", FREEZE_AT_EXIT, *entry], cwd=cwd, capture_output=True, text=True)


def test_module_entry_sees_its_argv_and_exit_code(tmp_path: Path) -> None:
    pkg = tmp_path / "fakekit"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "__main__.py").write_text(
        "\n".join(
            [
                "import sys",
                "print(__name__, sys.argv[0].endswith('__main__.py'), sys.argv[1:])",
                "sys.exit(int(sys.argv[-1]))",
            ]
        )
    )
    res = _run(tmp_path, "-m", "fakekit", "--data", "X", "3")
    assert res.returncode == 3, res.stderr
    assert res.stdout.strip() == "__main__ True ['--data', 'X', '3']"


def test_script_entry_imports_its_siblings_and_fails_like_python(tmp_path: Path) -> None:
    kit = tmp_path / "checkout"
    kit.mkdir()
    (kit / "helper.py").write_text("VALUE = 'sibling'\n")
    (kit / "run.py").write_text(
        "\n".join(
            [
                "import sys",
                "from helper import VALUE",
                "print(VALUE, sys.argv)",
                "if '--boom' in sys.argv: raise RuntimeError('boom')",
            ]
        )
    )
    ok = _run(tmp_path, str(kit / "run.py"), "--model", "M")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == f"sibling {[str(kit / 'run.py'), '--model', 'M']}"
    bad = _run(tmp_path, str(kit / "run.py"), "--boom")
    assert bad.returncode == 1 and "RuntimeError: boom" in bad.stderr
