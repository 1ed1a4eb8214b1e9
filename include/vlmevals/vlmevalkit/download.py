"""Datasets fetched before the GPU slot: VLMEvalKit would download a missing (or md5-mismatched) TSV itself,
but only after the model is loaded on the GPUs.

The URL and md5 are VLMEvalKit's own (its DATASET_URL / DATASET_MD5, via vlmevals.vlmevalkit.registry) or the
task's `dataset_url` + `dataset_md5`; `EVALS_DATASET_MIRROR` replaces the host part. The body goes to a temp
file in LMUData's filesystem, is md5-checked and renamed atomically; a file lock makes concurrent runs
download once. `EVALS_OFFLINE=1` fails fast instead of downloading.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from filelock import FileLock
from tenacity import retry, retry_if_exception, stop_after_attempt, wait_exponential

from vlmevals.core.errors import InvalidRequestError
from vlmevals.core.settings import Settings
from vlmevals.vlmevalkit import registry
from vlmevals.vlmevalkit.datasets import DatasetInfo, check_columns, file_md5

log = logging.getLogger(__name__)
MIRROR_ENV = "EVALS_DATASET_MIRROR"
OFFLINE_ENV = "EVALS_OFFLINE"
TRIES_ENV = "EVALS_DOWNLOAD_TRIES"
Progress = Callable[[int, int | None], None]
RETRY_HINT = (
    f"Check that the URL is reachable from this worker (or set {MIRROR_ENV}, or the task's dataset_url) and "
    "trigger the evaluation again; nothing was written to LMUData and no GPU was taken"
)


class DatasetDownloadError(InvalidRequestError):
    """The download failed or did not verify; `transient` ones (network, 5xx, truncation) are retried."""

    def __init__(self, message: str, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


@dataclass(frozen=True)
class Source:
    url: str
    md5: str | None


@dataclass(frozen=True)
class Fetched:
    path: Path
    url: str
    md5: str
    bytes: int
    seconds: float
    downloaded: bool  # False: another run (or an earlier one) had already fetched it


def offline() -> bool:
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in ("1", "true", "yes")


def mirrored(url: str, mirror: str | None = None) -> str:
    """`url` with scheme and host replaced by the mirror's (a path prefix on the mirror is kept)."""
    mirror = (mirror if mirror is not None else os.environ.get(MIRROR_ENV, "")).strip().rstrip("/")
    if not mirror:
        return url
    parts = urlsplit(url)
    return mirror + parts.path + (f"?{parts.query}" if parts.query else "")


def source_for(data: str, settings: Settings, url: str | None = None, md5: str | None = None) -> Source | None:
    """Where the dataset comes from: the task's own URL, else VLMEvalKit's registry (None: a custom TSV)."""
    if url:
        return Source(mirrored(url), md5)
    entry = registry.load(settings).dataset(data)
    if entry is None or not entry.url:
        return None
    return Source(mirrored(entry.url), entry.md5)


def _transient(err: BaseException) -> bool:
    return isinstance(err, DatasetDownloadError) and err.transient


def _stream(url: str, md5: str | None, tmp: Path, on_progress: Progress | None) -> tuple[int, str]:
    """Write the body to `tmp`; the byte count and md5 of what arrived."""
    h = hashlib.md5()
    done, last = 0, 0.0
    try:
        with httpx.stream("GET", url, follow_redirects=True, timeout=httpx.Timeout(30.0, read=120.0)) as r:
            if r.status_code != 200:
                raise DatasetDownloadError(
                    f"downloading {url} failed: HTTP {r.status_code}. {RETRY_HINT}", transient=r.status_code >= 500
                )
            total = int(r.headers["Content-Length"]) if r.headers.get("Content-Length", "").isdigit() else None
            with tmp.open("wb") as fh:
                for chunk in r.iter_raw(1 << 20):
                    fh.write(chunk)
                    h.update(chunk)
                    done += len(chunk)
                    if on_progress and time.monotonic() - last >= 1.0:
                        on_progress(done, total)
                        last = time.monotonic()
            if on_progress:
                on_progress(done, total)
    except httpx.RemoteProtocolError as err:
        msg = f"downloading {url} failed: the body was truncated ({err}). {RETRY_HINT}"
        raise DatasetDownloadError(msg, transient=True) from err
    except httpx.HTTPError as err:
        raise DatasetDownloadError(f"downloading {url} failed: {err!r}. {RETRY_HINT}", transient=True) from err
    if total is not None and done != total:
        raise DatasetDownloadError(f"downloading {url}: got {done} of {total} bytes (truncated). {RETRY_HINT}", True)
    return done, h.hexdigest()


def _download(src: Source, dest: Path, on_progress: Progress | None) -> int:
    tries = int(os.environ.get(TRIES_ENV, "3"))

    @retry(
        retry=retry_if_exception(_transient),
        stop=stop_after_attempt(max(1, tries)),
        wait=wait_exponential(multiplier=0.5, max=10),
        reraise=True,
    )
    def attempt() -> int:
        tmp = dest.parent / f".{dest.name}.{os.getpid()}.part"
        try:
            size, got = _stream(src.url, src.md5, tmp, on_progress)
            if src.md5 and got != src.md5:
                raise DatasetDownloadError(
                    f"downloaded {src.url} but its md5 is {got}, expected {src.md5}: the file on the server "
                    f"differs from what VLMEvalKit (or the task's dataset_md5) expects. Check the URL and "
                    f"{MIRROR_ENV}, or fix dataset_md5; nothing was written to {dest.parent}"
                )
            os.replace(tmp, dest)  # same filesystem: atomic
            return size
        finally:
            tmp.unlink(missing_ok=True)

    return attempt()


def fetch(src: Source, dest: Path, *, on_progress: Progress | None = None, lock_timeout_s: float = 3600) -> Fetched:
    """Make `dest` hold the verified file; concurrent callers wait on a lock and reuse the first one's file."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    locks = dest.parent / ".locks"
    locks.mkdir(exist_ok=True)
    t0 = time.monotonic()
    with FileLock(str(locks / f"{dest.name}.lock"), timeout=lock_timeout_s):
        if dest.exists():
            md5 = file_md5(dest)
            if src.md5 is None or md5 == src.md5:
                return Fetched(dest, src.url, md5, dest.stat().st_size, time.monotonic() - t0, False)
            log.warning("%s has md5 %s, expected %s: downloading it again", dest, md5, src.md5)
        log.info("downloading %s -> %s", src.url, dest)
        size = _download(src, dest, on_progress)
    secs = time.monotonic() - t0
    log.info("downloaded %s: %d bytes in %.1f s (%.1f MB/s)", dest.name, size, secs, size / 1e6 / max(secs, 1e-6))
    return Fetched(dest, src.url, src.md5 or file_md5(dest), size, secs, True)


def prepare_dataset(
    data: str,
    settings: Settings,
    *,
    url: str | None = None,
    md5: str | None = None,
    on_progress: Progress | None = None,
    on_fetched: Callable[[Fetched], None] | None = None,
) -> DatasetInfo:
    """The dataset TSV present and verified in LMUData (downloaded if need be), before any GPU is taken."""
    tsv = settings.lmu_data / f"{data}.tsv"
    src = source_for(data, settings, url, md5)
    if src is None or (offline() and tsv.exists()):
        return _present(data, tsv, settings, src, custom=url is not None)
    if offline():
        raise InvalidRequestError(
            f"dataset TSV {tsv} is missing: put {data}.tsv into LMUData ({settings.lmu_data}) or set LMUData "
            f"to the folder that has it (workers cannot download datasets at run time: {OFFLINE_ENV}=1)"
        )
    got = fetch(src, tsv, on_progress=on_progress)
    if on_fetched:
        on_fetched(got)
    return _present(data, tsv, settings, src, custom=url is not None)


def _present(data: str, tsv: Path, settings: Settings, src: Source | None, *, custom: bool = False) -> DatasetInfo:
    """Presence, md5 and (for a TSV VLMEvalKit does not ship: `custom` or without md5) the columns it needs."""
    from vlmevals.vlmevalkit.outputs import count_rows

    if not tsv.exists():
        raise InvalidRequestError(
            f"dataset TSV {tsv} is missing and {data!r} is neither registered in VLMEvalKit nor given a "
            f"dataset_url: put {data}.tsv into LMUData ({settings.lmu_data}) or set the task's dataset_url and "
            "dataset_md5"
        )
    got = file_md5(tsv, settings.outputs_dir / ".cache" / "md5.json")
    expected = src.md5 if src else None
    if expected and got != expected:
        raise InvalidRequestError(
            f"dataset TSV {tsv} has md5 {got} but {expected} is expected for {data}; VLMEvalKit would try to "
            f"re-download it ({OFFLINE_ENV}=1 forbids downloads). Replace the file with the official one."
        )
    if custom or expected is None:
        check_columns(tsv)
    return DatasetInfo(tsv, got, count_rows(tsv), src is not None, expected)
