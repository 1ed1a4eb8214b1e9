"""The registry cache: written once per VLMEvalKit, by the start-up warm-up rather than by a request."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from vlmevals.core.settings import Settings
from vlmevals.vlmevalkit import registry, versions

REGISTRY = {"datasets": {"D": {"class": "ImageMCQDataset", "type": "MCQ"}}, "models": {"M": {"class": "X"}}}


@pytest.fixture()
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """An interpreter standing in for VLMEvalKit's: it answers the version probe, and counts each registry dump
    (slowly, as `import vlmeval` does)."""
    monkeypatch.setenv(registry.CACHE_ENV, str(tmp_path / "cache"))
    python = tmp_path / "python"
    dumps = tmp_path / "dumps"
    probe = json.dumps({"python": "3.11", "ms-vlmeval": "9.9"})
    python.write_text(
        "#!/bin/sh\n"
        f"case \"$*\" in *ms-vlmeval*) echo '{probe}'; exit 0;; esac\n"
        f"echo dump >> {dumps}; sleep 1; echo '{json.dumps(REGISTRY)}'\n"
    )
    python.chmod(0o755)
    versions.package_versions.cache_clear()
    versions.vlmeval_version.cache_clear()
    return Settings.model_validate({"VLMEVAL_PYTHON": str(python), "LMUData": tmp_path, "VLMEVAL_OUTPUTS": tmp_path})


def test_a_request_during_the_warm_up_waits_for_it_and_nothing_imports_twice(settings: Settings) -> None:
    assert settings.vlmeval_python is not None
    dumps = Path(settings.vlmeval_python).parent / "dumps"
    warming = registry.warm_in_background(settings)
    reg = registry.load(settings)  # as a POST /models arriving while the stack starts
    warming.join(timeout=30)
    assert not warming.is_alive()
    assert reg.version == "ms-vlmeval==9.9" and "M" in reg.models and reg.dataset("D") is not None
    assert dumps.read_text().splitlines() == ["dump"], "one dump for the warm-up and the request together"
    registry.load(settings)
    assert dumps.read_text().splitlines() == ["dump"], "later lookups read the cache file"
    assert registry.cache_file(reg.version, settings.vlmeval_python).exists()


def test_a_warm_up_that_cannot_import_vlmeval_leaves_no_cache(settings: Settings) -> None:
    assert settings.vlmeval_python is not None
    Path(settings.vlmeval_python).write_text(f"#!/bin/sh\nexec {sys.executable} -c 'import sys; sys.exit(3)'\n")
    versions.package_versions.cache_clear()
    versions.vlmeval_version.cache_clear()
    registry.warm_in_background(settings).join(timeout=30)  # logs, does not raise
    assert not list(registry.cache_dir().glob("*.json"))
