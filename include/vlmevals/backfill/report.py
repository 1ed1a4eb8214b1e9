"""What a backfill sync reports: counts, and every result it did not record with the reason."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Problem:
    """A result not recorded, and why (unknown model/task, malformed files, inference or scoring unfinished)."""

    path: str
    reason: str
    model: str | None = None
    data: str | None = None
    samples: int | None = None  # incomplete: the samples inference reached


@dataclass
class SyncReport:
    folder: str
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0  # of the created/updated: results VLMEvalKit recorded as failed
    unknown: list[Problem] = field(default_factory=list)
    malformed: list[Problem] = field(default_factory=list)
    incomplete: list[Problem] = field(default_factory=list)  # inference killed: partial pickles only
    not_scored: list[Problem] = field(default_factory=list)  # predictions, but scoring never finished
    samples_ingested: int = 0  # runs whose per-sample results were stored
    created_models: list[str] = field(default_factory=list)
    created_tasks: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    results_seen: int = 0
    files_parsed: int = 0  # first pass: the metric files (and a changed result's per-sample file)
    sample_files_parsed: int = 0  # second pass: the per-sample files of the runs waiting for them
    runs_seconds: float = 0.0  # until the first pass committed: every result on the boards
    seconds: float = 0.0  # the whole sync, per-sample files included

    def counts(self) -> dict[str, int]:
        return {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "failed": self.failed,
            "unknown": len(self.unknown),
            "malformed": len(self.malformed),
            "incomplete": len(self.incomplete),
            "not_scored": len(self.not_scored),
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "folder": self.folder,
            **self.counts(),
            "results_seen": self.results_seen,
            "files_parsed": self.files_parsed,
            "sample_files_parsed": self.sample_files_parsed,
            "runs_seconds": round(self.runs_seconds, 3),
            "seconds": round(self.seconds, 3),
            "created_models": self.created_models,
            "created_tasks": self.created_tasks,
            "unknown_results": [asdict(p) for p in self.unknown],
            "malformed_results": [asdict(p) for p in self.malformed],
            "incomplete_results": [asdict(p) for p in self.incomplete],
            "not_scored_results": [asdict(p) for p in self.not_scored],
            "samples_ingested": self.samples_ingested,
            "ignored": self.ignored,
        }

    def summary_line(self) -> str:
        c = self.counts()
        return (
            f"sync {self.folder}: {c['created']} created, {c['updated']} updated, {c['unchanged']} unchanged, "
            f"{c['failed']} failed, {c['unknown']} unknown, {c['malformed']} malformed, "
            f"{c['incomplete']} incomplete, {c['not_scored']} not scored "
            f"({self.results_seen} results, on the boards after {self.runs_seconds:.2f} s, {self.samples_ingested} "
            f"runs' samples stored, {self.seconds:.2f} s in all)"
        )
