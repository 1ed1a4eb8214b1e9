"""The file reads of a backfill scan, in a process pool when there are many: each completed result's metric
file and then its per-sample file, parsed and summarised in the same worker so the parent only writes.

Why together: a result's per-sample file is read only when its metric file gave a score (as the pipeline's
ingest does), and both are CPU-bound parses; one job per result keeps the pool's hand-offs to one per result.
"""

from __future__ import annotations

import os
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


def read_one(job: Job) -> Read:
    """One result's files; runs in pool workers too. A per-sample file that cannot be read never costs the
    result its official score (the reason is kept, as the pipeline's ingest keeps it)."""
    primary, table, problem = _read_metrics(job.metric_file, job.key)
    if problem is not None or table is None or job.sample_file is None:
        return Read(primary, table, problem, None)
    try:
        samples: PerSample | str = read_summarised(Path(job.sample_file), job.scale)
    except Exception as err:  # a per-sample parser problem must not lose the run's official score
        samples = f"{type(err).__name__}: {err}"
    return Read(primary, table, problem, samples)


def read_many(jobs: list[Job], workers: int) -> list[Read]:
    if workers > 1 and len(jobs) >= PARALLEL_MIN:
        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("fork")) as pool:
            return list(pool.map(read_one, jobs, chunksize=max(50, len(jobs) // (workers * 8))))
    return [read_one(j) for j in jobs]
