"""Finding VLMEvalKit results in a work dir without reading them: directory listings and stat() only.

Layouts (see DESIGN.md):

- ``upstream``: ``{model}/T{YYYYMMDD-HHMMSS}/`` with status.json, plus relative symlinks in ``{model}/`` to
  the newest run's files. Each T folder is its own run; the symlinks are never followed (not extra runs).
- ``legacy``: ``{model}/T{YYYYMMDD}_G{commit8}/`` (older upstream, nvidia-vlmeval), often without status.json.
- ``flat``: files directly in ``{model}/`` (ms-vlmeval, which also leaves an empty T folder behind).

A result is one (folder, dataset). Its identity (`source_path`) is ``{folder}/{model}_{dataset}``, the prefix
every file of the result shares; its `mtime_ns` is the newest mtime among its files and the folder's
status.json, so a re-scan can tell "unchanged" from a listing alone.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

STATUS_FILE = "status.json"
UPSTREAM_DIR = re.compile(r"^T(\d{8})-(\d{6})$")
LEGACY_DIR = re.compile(r"^T(\d{8})_G([0-9a-fA-F]{6,40})$")
PREDICTION_EXTS = (".xlsx", ".tsv", ".json")
# intermediate files that never make a dataset of their own
_TEMP_SUFFIXES = ("_checkpoint.pkl", "_PREV.pkl", "_structs.pkl")


@dataclass
class ResultRef:
    """One (folder, dataset) result as seen in a listing."""

    model: str  # the model folder's name (VLMEvalKit's --model name)
    data: str
    folder: str  # absolute path of the folder holding the files
    layout: str  # upstream | legacy | flat
    eval_id: str | None  # T folder name (upstream/legacy)
    commit: str | None  # legacy folders carry the toolkit commit
    files: dict[str, int] = field(default_factory=dict)  # file name -> mtime_ns
    status_mtime_ns: int | None = None

    @property
    def source_path(self) -> str:
        return f"{self.folder}/{self.model}_{self.data}"

    @property
    def mtime_ns(self) -> int:
        return max([*self.files.values(), self.status_mtime_ns or 0])

    @property
    def status_path(self) -> str | None:
        return f"{self.folder}/{STATUS_FILE}" if self.status_mtime_ns is not None else None


@dataclass
class FolderListing:
    """A result folder's regular files (symlinks excluded) and its status.json, as listed."""

    model: str
    path: str
    layout: str
    eval_id: str | None
    commit: str | None
    files: dict[str, int]
    status_mtime_ns: int | None


def _regular_files(path: str) -> dict[str, int]:
    out: dict[str, int] = {}
    with os.scandir(path) as it:
        for e in it:
            if e.is_symlink() or not e.is_file(follow_symlinks=False):
                continue
            out[e.name] = e.stat(follow_symlinks=False).st_mtime_ns
    return out


def _scan_model_dir(path: str) -> tuple[dict[str, int], list[tuple[str, str, str | None]]]:
    """A model folder's regular files (name -> mtime) and its T folders (name, layout, commit)."""
    flat: dict[str, int] = {}
    tdirs: list[tuple[str, str, str | None]] = []
    with os.scandir(path) as it:
        for e in it:
            if e.is_symlink():
                continue  # upstream's links to the newest run: that run is read from its T folder
            if e.is_dir(follow_symlinks=False):
                if UPSTREAM_DIR.match(e.name):
                    tdirs.append((e.name, "upstream", None))
                elif mt := LEGACY_DIR.match(e.name):
                    tdirs.append((e.name, "legacy", mt.group(2)))
            elif e.is_file(follow_symlinks=False):
                flat[e.name] = e.stat(follow_symlinks=False).st_mtime_ns
    return flat, tdirs


def _model_folders(model: str, path: str) -> list[FolderListing] | None:
    """The result folders of one model folder, or None when it is not one."""
    flat, tdirs = _scan_model_dir(path)
    has_flat = STATUS_FILE in flat or any(n.startswith(f"{model}_") for n in flat)
    if not tdirs and not has_flat:
        return None
    folders: list[FolderListing] = []
    if has_flat:
        status = flat.pop(STATUS_FILE, None)
        folders.append(FolderListing(model, path, "flat", None, None, flat, status))
    for name, layout, commit in sorted(tdirs):
        tpath = os.path.join(path, name)
        files = _regular_files(tpath)
        status = files.pop(STATUS_FILE, None)
        if files or status is not None:
            folders.append(FolderListing(model, tpath, layout, name, commit, files, status))
    return folders


def list_folders(root: str) -> tuple[list[FolderListing], list[str]]:
    """Every result folder under `root` (model folders and their T folders), and top-level entries ignored.

    A top-level folder counts as a model folder when it holds a status.json, files named `{folder}_*`, or
    T folders; anything else (our own `runs/`, VLMEvalKit's `logs/`, caches) is ignored and listed.
    """
    folders: list[FolderListing] = []
    ignored: list[str] = []
    with os.scandir(root) as top:
        entries = sorted((e for e in top), key=lambda e: e.name)
    for m in entries:
        if m.name.startswith(".") or m.is_symlink() or not m.is_dir(follow_symlinks=False):
            continue
        found = _model_folders(m.name, m.path)
        if found is None:
            ignored.append(m.path)
        else:
            folders.extend(found)
    return folders, ignored


def _prefixes(rest: str) -> Iterable[str]:
    """Candidate dataset names a file name's tail could start with, longest first: split at '_' and '.'."""
    cuts = [i for i, ch in enumerate(rest) if ch in "_."]
    for i in reversed(cuts):
        yield rest[:i]


def datasets_in(
    listing: FolderListing, *, known: set[str], status_datasets: Iterable[str] = ()
) -> dict[str, dict[str, int]]:
    """Group a folder's files by dataset: `{data: {file: mtime_ns}}`.

    Datasets come from prediction files (`{model}_{data}.xlsx|tsv|json`; a longer name that extends a shorter
    one, like `{data}_exact_matching_result.xlsx`, is an auxiliary file), from status.json and from `known`
    (the catalogue's datasets, so a result whose prediction file is missing is still found). A file belongs to
    the longest dataset its name starts with.
    """
    prefix = f"{listing.model}_"
    tails = {n: n[len(prefix) :] for n in listing.files if n.startswith(prefix) and not n.endswith(_TEMP_SUFFIXES)}
    candidates = set(status_datasets)
    preds = sorted((t.rsplit(".", 1)[0] for t in tails.values() if t.endswith(PREDICTION_EXTS)), key=len)
    for d in preds:
        if d in known or not any(d.startswith(c + "_") for c in candidates):
            candidates.add(d)
    for tail in tails.values():
        for p in _prefixes(tail):
            if p in known:
                candidates.add(p)
                break
    groups: dict[str, dict[str, int]] = {d: {} for d in candidates}
    for name, tail in tails.items():
        for p in _prefixes(tail):
            if p in candidates:
                groups[p][name] = listing.files[name]
                break
    return groups


def results_of(listing: FolderListing, groups: dict[str, dict[str, int]]) -> list[ResultRef]:
    return [
        ResultRef(
            listing.model,
            d,
            listing.path,
            listing.layout,
            listing.eval_id,
            listing.commit,
            files,
            listing.status_mtime_ns,
        )
        for d, files in sorted(groups.items())
    ]
