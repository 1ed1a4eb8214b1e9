"""VLMEvalKit's import-time ERROR about a missing `.env` never reaches our console: not from the demo's
in-process import, not from the registry warm-up of `vlmevals up`."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from vlmevals.vlmevalkit.quiet_import import vlmeval_logging_quiet

ROOT = Path(__file__).resolve().parents[3]
NOISE = "Did not detect the .env file"


def _python(code: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "include"), "EVALS_CACHE_DIR": str(tmp_path / "cache")}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    return res


def test_records_of_vlmeval_modules_are_dropped_and_ours_kept() -> None:
    root = logging.getLogger()
    seen: list[str] = []
    catcher = logging.Handler()
    catcher.emit = lambda record: seen.append(record.getMessage())  # type: ignore[method-assign]
    before = list(root.handlers)
    with vlmeval_logging_quiet():
        logging.basicConfig()  # as vlmeval's load_env does: a no-op while our guard handler is there
        added = [h for h in root.handlers if h not in before]
        root.addHandler(catcher)
        try:
            for path, msg in (("/venv/site-packages/vlmeval/__init__.py", "noise"), ("/x/vlmevals/cli.py", "ours")):
                root.handle(logging.makeLogRecord({"msg": msg, "levelno": 40, "levelname": "ERROR", "pathname": path}))
        finally:
            root.removeHandler(catcher)
    assert [type(h) for h in added] == [logging.NullHandler]
    assert seen == ["ours"]
    assert root.handlers == before and not root.filters


@pytest.mark.integration
def test_the_demo_training_import_of_vlmeval_prints_nothing(tmp_path: Path) -> None:
    """The control run proves the line is there to hide (VLMEvalKit still logs it on a plain import)."""
    plain = _python("import vlmeval", tmp_path)
    assert NOISE in plain.stderr, "VLMEvalKit no longer logs the line: this test guards nothing now"
    quiet = _python(
        "import logging\n"
        "from vlmevals.devtools.demo import train_data\n"
        "train_data.import_quietly('vlmeval.dataset')\n"
        "assert not logging.getLogger().handlers, logging.getLogger().handlers\n",
        tmp_path,
    )
    assert NOISE not in quiet.stderr + quiet.stdout
    assert "ERROR" not in quiet.stderr, quiet.stderr[-2000:]


@pytest.mark.integration
def test_the_registry_warm_up_at_start_prints_nothing(tmp_path: Path) -> None:
    res = _python(
        "from vlmevals.core.settings import get_settings\n"
        "from vlmevals.vlmevalkit import registry\n"
        "registry.warm_in_background(get_settings()).join()\n"
        "print(sorted(p.name for p in registry.cache_dir().glob('*.json')))\n",
        tmp_path,
    )
    assert "vlmeval-registry-" in res.stdout, "the warm-up wrote no cache: it did not run VLMEvalKit"
    assert NOISE not in res.stderr + res.stdout
    assert res.stderr.strip() == "", res.stderr[-2000:]
