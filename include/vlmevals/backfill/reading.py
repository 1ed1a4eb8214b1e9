"""The file reads of a backfill scan. First pass: the metric files (tiny CSVs, ~0.03 ms each: read in the
scanning process). A changed result's per-sample file is read in the same job (`Job.sample_file`), as the
pipeline's ingest does. Second pass: the per-sample files of the runs the first pass stored (~1.4 ms each, 98 %
of a first scan's reading), parsed and summarised in a process pool so the parent only writes.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import NamedTuple

from vlmevals.core.errors import VLMEvalFailure
from vlmevals.results.samples.ingest import PerSample, read_summarised
from vlmevals.vlmevalkit import outputs

PARALLEL_MIN = 400  # below this many results to read, a process pool costs more than it saves


class Job(NamedTuple):
    metric_file: str
    key: str
    sample_file: str | None  # the per-sample file chosen from the listing (None: the result has none)
    scale: float  # the task's metric scale, for the per-sample summary


class Read(NamedTuple):
    primary: float | None
    table: dict[str, float] | None
    problem: str | None  # why the metric file gave no score
    samples: PerSample | str | None  # rows and summary, the reason they could not be read, or no file


def _read_metrics(path: str, key: str) -> tuple[float | None, dict[str, float] | None, str | None]:
    try:
        table = outputs.read_metric_file(Path(path))
    except VLMEvalFailure as err:
        return None, None, str(err)
    except Exception as err:  # an unexpected file content must not stop the scan
        return None, None, f"metric file {path} is unreadable ({type(err).__name__}: {err})"
    primary = outputs.pick_primary(table, key)
    if primary is None:
        return (
            None,
            table,
            (f"metric key {key!r} not found in {os.path.basename(path)}; available: {', '.join(list(table)[:15])}"),
        )
    return primary, table, None


def read_samples(job: tuple[str, float]) -> PerSample | str:
    """One per-sample file (path, the task's metric scale), read and summarised; runs in pool workers too. A
    file that cannot be read gives the reason (kept in metrics["samples_error"], as the pipeline's ingest does)."""
    try:
        return read_summarised(Path(job[0]), job[1])
    except Exception as err:  # a per-sample parser problem must not lose the run's official score
        return f"{type(err).__name__}: {err}"


def read_one(job: Job) -> Read:
    """One result's files. A per-sample file that cannot be read never costs the result its official score."""
    primary, table, problem = _read_metrics(job.metric_file, job.key)
    if problem is not None or table is None or job.sample_file is None:
        return Read(primary, table, problem, None)
    return Read(primary, table, problem, read_samples((job.sample_file, job.scale)))


def read_many(jobs: list[Job], workers: int) -> list[Read]:
    """The first pass's reads: in this process unless many of them include a per-sample file."""
    if workers > 1 and sum(j.sample_file is not None for j in jobs) >= PARALLEL_MIN:
        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("fork")) as pool:
            return list(pool.map(read_one, jobs, chunksize=max(50, len(jobs) // (workers * 8))))
    return [read_one(j) for j in jobs]


def read_samples_many(jobs: list[tuple[str, float]], workers: int) -> Iterator[PerSample | str]:
    """The second pass's reads, in order, as they finish (the caller writes one batch while the pool reads on)."""
    if workers > 1 and len(jobs) >= PARALLEL_MIN:
        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("fork")) as pool:
            yield from pool.map(read_samples, jobs, chunksize=max(20, min(200, len(jobs) // (workers * 8))))
        return
    yield from map(read_samples, jobs)
