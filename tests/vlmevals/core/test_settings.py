"""One Settings with a GPU section, cached by get_settings() and re-read after cache_clear()."""

from __future__ import annotations

import pytest
from vlmevals.core.settings import get_settings


@pytest.fixture(autouse=True)
def _fresh_settings() -> object:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_gpu_section_reads_its_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVALS_GPUS", "0,2")
    monkeypatch.setenv("EVALS_GPU_HOST", "")  # compose passes unset as ""
    monkeypatch.setenv("EVALS_GPU_WAIT_S", "7")
    monkeypatch.setenv("GPU", "not json")  # an unrelated variable must not be read as the section
    gpu = get_settings().gpu
    assert (gpu.gpus, gpu.host, gpu.wait_s, gpu.stale_s) == ("0,2", None, 7.0, 120.0)


def test_cached_until_cleared(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVALS_JUDGE", "exact_matching")
    monkeypatch.setenv("EVALS_GPU_POLL_S", "3")
    first = get_settings()
    monkeypatch.setenv("EVALS_JUDGE", "gpt-4o")
    monkeypatch.setenv("EVALS_GPU_POLL_S", "9")
    assert get_settings() is first and first.gpu is first.gpu and first.gpu.poll_s == 3.0
    get_settings.cache_clear()
    again = get_settings()
    assert (again.judge, again.gpu.poll_s) == ("gpt-4o", 9.0), "cache_clear() re-reads sections too"
