"""Datasets fetched before the GPU slot, against a local HTTP dataset host: verified, reused, downloaded once
by concurrent runs, and every failure leaves nothing in LMUData."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from vlmevals.core.errors import InvalidRequestError
from vlmevals.core.settings import Settings
from vlmevals.vlmevalkit import download, registry
from vlmevals.vlmevalkit.download import DatasetDownloadError, prepare_dataset

from tests.doubles.dataset_host import DatasetHost, dataset_host

BODY = ("index\tquestion\tanswer\timage_path\n" + "".join(f"{i}\tq{i}\tA\t{i}.png\n" for i in range(20000))).encode()
MD5 = hashlib.md5(BODY).hexdigest()


@pytest.fixture()
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.delenv(download.OFFLINE_ENV, raising=False)
    monkeypatch.delenv(download.MIRROR_ENV, raising=False)
    monkeypatch.setenv(download.TRIES_ENV, "2")
    (tmp_path / "LMUData").mkdir()
    return Settings.model_validate({"LMUData": tmp_path / "LMUData", "VLMEVAL_OUTPUTS": tmp_path / "out"})


@pytest.fixture()
def host() -> Iterator[DatasetHost]:
    with dataset_host() as h:
        yield h


def _left(settings: Settings) -> list[str]:
    """What a failed download left in LMUData (the lock folder is not data)."""
    return sorted(p.name for p in settings.lmu_data.iterdir() if p.name != ".locks")


def test_download_verifies_md5_and_second_run_reuses(settings: Settings, host: DatasetHost) -> None:
    url = host.add("/private/MYBENCH.tsv", BODY)
    seen: list[tuple[int, int | None]] = []
    info = prepare_dataset("MYBENCH", settings, url=url, md5=MD5, on_progress=lambda d, t: seen.append((d, t)))
    assert info.path.read_bytes() == BODY and info.md5 == MD5 and info.rows == 20000
    assert seen[-1] == (len(BODY), len(BODY))
    again = prepare_dataset("MYBENCH", settings, url=url, md5=MD5)
    assert again.md5 == MD5 and host.state.gets["/private/MYBENCH.tsv"] == 1
    assert _left(settings) == ["MYBENCH.tsv"]


def test_mismatching_file_on_disk_is_downloaded_again(settings: Settings, host: DatasetHost) -> None:
    url = host.add("/d/B.tsv", BODY)
    (settings.lmu_data / "B.tsv").write_text("stale\n")
    assert prepare_dataset("B", settings, url=url, md5=MD5).md5 == MD5
    assert host.state.gets["/d/B.tsv"] == 1


def test_mirror_replaces_the_host_of_vlmevalkits_url(
    settings: Settings, host: DatasetHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    reg = registry.Registry(
        "test",
        {
            "REG_BENCH": {
                "class": "ImageMCQDataset",
                "type": "MCQ",
                "url": "https://data.invalid/utils/REG_BENCH.tsv",
                "md5": MD5,
                "judge": None,
            }
        },
        {},
    )
    monkeypatch.setattr(registry, "load", lambda settings: reg)
    host.add("/mirror/utils/REG_BENCH.tsv", BODY)
    monkeypatch.setenv(download.MIRROR_ENV, host.url("/mirror"))
    info = prepare_dataset("REG_BENCH", settings)
    assert info.registered and info.expected_md5 == MD5 and info.md5 == MD5
    assert host.state.gets == {"/mirror/utils/REG_BENCH.tsv": 1}


def test_five_concurrent_runs_download_once(settings: Settings) -> None:
    with dataset_host(rate_bps=2_000_000) as host:  # slow enough that all five overlap
        url = host.add("/d/C.tsv", BODY)
        got: list[str] = []
        errors: list[BaseException] = []

        def run() -> None:
            try:
                got.append(prepare_dataset("C", settings, url=url, md5=MD5).md5)
            except BaseException as err:  # pragma: no cover - reported below
                errors.append(err)

        threads = [threading.Thread(target=run) for _ in range(5)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors and got == [MD5] * 5
        assert host.state.gets["/d/C.tsv"] == 1
    assert _left(settings) == ["C.tsv"]


@pytest.mark.parametrize("fault", ["corrupt", "500", "truncate"])
def test_failures_name_the_problem_and_leave_nothing(settings: Settings, host: DatasetHost, fault: str) -> None:
    url = host.add("/d/BAD.tsv", BODY, fault=fault)
    with pytest.raises(DatasetDownloadError) as err:
        prepare_dataset("BAD", settings, url=url, md5=MD5)
    msg = str(err.value)
    assert url in msg
    if fault == "corrupt":
        received = hashlib.md5(bytes(b ^ 0x5A for b in BODY[:64]) + BODY[64:]).hexdigest()
        assert f"expected {MD5}" in msg and received in msg and "dataset_md5" in msg
        assert host.state.gets["/d/BAD.tsv"] == 1  # a wrong md5 is not retried
    else:
        assert ("HTTP 500" if fault == "500" else "truncated") in msg
        assert host.state.gets["/d/BAD.tsv"] == 2  # transient: retried (EVALS_DOWNLOAD_TRIES=2), then failed
    assert _left(settings) == []


def test_offline_fails_fast_without_a_request(
    settings: Settings, host: DatasetHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(download.OFFLINE_ENV, "1")
    url = host.add("/d/OFF.tsv", BODY)
    with pytest.raises(InvalidRequestError, match="workers cannot download datasets at run time"):
        prepare_dataset("OFF", settings, url=url, md5=MD5)
    assert host.state.gets == {}


def test_custom_tsv_missing_names_the_fix(settings: Settings) -> None:
    with pytest.raises(InvalidRequestError, match="dataset_url"):
        prepare_dataset("NOT_REGISTERED_ANYWHERE_XYZ", settings)


def test_real_registry_knows_vlmevalkits_url_and_md5() -> None:
    entry = registry.load(Settings()).dataset("MMBench_DEV_EN")
    assert entry is not None and entry.url and entry.url.endswith("MMBench_DEV_EN.tsv")
    assert entry.md5 and len(entry.md5) == 32 and not entry.needs_llm_judge
    assert download.mirrored(entry.url, "http://mirror.local:81/vlm") == (
        "http://mirror.local:81/vlm/utils/benchmarks/MMBench/MMBench_DEV_EN.tsv"
    )
