"""What determines a result, recorded with every run: toolkit, model and weights, dataset, judge, generation
settings and environment.

`hash` covers the parts that change the score (toolkit, model identity, dataset md5, judge, generation);
the environment is recorded for diagnosis but left out of the hash, so a driver update does not look like
a new model. A served model's `concurrency` (the request share the run got, vlmevals.runs.concurrency) is
recorded the same way, unhashed: it changes speed, not results. The nightly DAG skips a pair whose last
completed run has the same hash.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from vlmevals.core.settings import Settings
from vlmevals.gpu.detect import nvidia_smi
from vlmevals.vlmevalkit import hub
from vlmevals.vlmevalkit.command import ModelSpec, TaskSpec, expand_paths, python_executable
from vlmevals.vlmevalkit.datasets import file_md5
from vlmevals.vlmevalkit.versions import package_versions, vlmeval_version

HASHED_PARTS = ("toolkit", "model", "dataset", "judge", "generation", "serving")
GENERATION_KEYS = (
    "max_new_tokens",
    "max_tokens",
    "temperature",
    "top_p",
    "top_k",
    "do_sample",
    "num_beams",
    "repetition_penalty",
    "system_prompt",
)
SECRET_KEYS = {"key", "api_key", "token", "access_token", "secret", "password"}
SECRET_SUFFIXES = ("_key", "_secret", "_password", "_token")
# The fingerprint fields that decide whether two scores may sit in one table unmarked: (part, key, reason when
# they differ). Compared runs, drift marks and the leaderboard query all read this one list.
COMPARABILITY_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("dataset", "md5", "dataset md5 differs"),
    ("judge", "name", "judge differs"),
    ("toolkit", "vlmeval", "VLMEvalKit version differs"),
    ("serving", "engine", "inference engine differs (served vs in-process, or another engine)"),
)


def weights_identity(path: Path) -> dict[str, Any]:
    """Identity of local weights without reading them: file names, sizes and mtimes (or a revision file)."""
    if not path.exists():
        return {"path": str(path), "missing": True}
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    h = hashlib.sha256()
    total = 0
    for f in files:
        st = f.stat()
        total += st.st_size
        h.update(f"{f.relative_to(path) if f != path else f.name}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
    return {"path": str(path), "files": len(files), "bytes": total, "sha256_names_sizes_mtimes": h.hexdigest()}


def _public_spec(spec: dict[str, Any]) -> dict[str, Any]:
    def secret(k: str) -> bool:
        return k.lower() in SECRET_KEYS or k.lower().endswith(SECRET_SUFFIXES)

    return {k: ("***" if secret(k) else v) for k, v in spec.items()}


def model_part(model: ModelSpec, settings: Settings, hub_online: bool = True) -> dict[str, Any]:
    """`hub_online`: resolve a Hub model's revision on the Hub now (nightly planning) rather than from the
    local cache the queue step filled (inference, which must not touch the network)."""
    hub_identity = hub.identity(model, settings, online=hub_online)
    if model.model_spec is not None:
        spec = expand_paths(model.model_spec, settings)
        part: dict[str, Any] = {
            "kind": "spec",
            "vlmeval_model": model.vlmeval_model,
            "class": spec.get("class"),
            "kwargs": _public_spec({k: v for k, v in spec.items() if k != "class"}),
        }
        revision = spec.get("revision")
        local = spec.get("model_path") or spec.get("model")
        if hub_identity:
            part["weights"] = hub_identity
        elif revision:
            part["weights"] = {"revision": revision}
        elif isinstance(local, str) and os.path.isabs(local):
            part["weights"] = weights_identity(Path(local))
        return part
    if model.endpoint_base_url:
        return {"kind": "endpoint", "served_model": model.vlmeval_model, "base_url": model.endpoint_base_url}
    registry_part: dict[str, Any] = {"kind": "registry", "vlmeval_model": model.vlmeval_model}
    return {**registry_part, "weights": hub_identity} if hub_identity else registry_part


def gpu_part(visible_devices: str | None = None) -> dict[str, Any]:
    rows = [(str(d.index), d.name) for d in nvidia_smi() or []]
    if visible_devices is not None:
        wanted = {d.strip() for d in visible_devices.split(",") if d.strip()}
        rows = [r for r in rows if r[0] in wanted]
    return {"gpus": len(rows), "names": sorted({name for _, name in rows})}


def compute(
    *,
    task: TaskSpec,
    model: ModelSpec,
    settings: Settings,
    judge: str | None,
    limit: int | None = None,
    dataset_md5: str | None = None,
    dataset_rows: int | None = None,
    visible_devices: str | None = None,
    with_environment: bool = True,
    hub_online: bool = True,
    checkpoint: dict[str, Any] | None = None,
    serving: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], str]:
    """The fingerprint dict and the hash of its result-determining parts; a run of a checkpoint records it
    (step/label and weights path or Hub revision) in the hashed model part, a served run its engine, version and
    arguments (`serving`, hashed: another engine may answer differently)."""
    python = python_executable(settings)
    tsv = settings.lmu_data / f"{task.vlmeval_data}.tsv"
    if dataset_md5 is None and tsv.exists():
        dataset_md5 = file_md5(tsv, settings.outputs_dir / ".cache" / "md5.json")
    judge = judge or settings.judge
    model_fp = model_part(model, settings, hub_online)
    if checkpoint is not None:
        model_fp["checkpoint"] = checkpoint
    spec_kwargs = model_fp.get("kwargs", {})
    fp: dict[str, Any] = {
        "toolkit": {"vlmeval": vlmeval_version(python, str(settings.vlmeval_root) if settings.vlmeval_root else None)},
        "model": model_fp,
        "dataset": {"name": task.vlmeval_data, "md5": dataset_md5, "rows": dataset_rows},
        "judge": {"name": judge, "base_url": settings.judge_base_url if judge != "exact_matching" else None},
        "generation": {"limit": limit, **{k: spec_kwargs[k] for k in GENERATION_KEYS if k in spec_kwargs}},
    }
    if serving is not None:
        fp["serving"] = serving
    if with_environment:
        fp["environment"] = {
            **package_versions(python),
            "platform": platform.platform(terse=True),
            **gpu_part(visible_devices),
        }
    return fp, fingerprint_hash(fp)


def fingerprint_hash(fp: dict[str, Any]) -> str:
    # an in-process run has no `serving` part: its hash stays what it was before serving existed
    hashed = {k: fp.get(k) for k in HASHED_PARTS if k != "serving" or fp.get(k) is not None}
    # row counts are informative; the md5 already pins the data
    hashed["dataset"] = {k: v for k, v in (hashed.get("dataset") or {}).items() if k != "rows"}
    return hashlib.sha256(json.dumps(hashed, sort_keys=True, default=str).encode()).hexdigest()


def model_change(old: dict[str, Any], new: dict[str, Any]) -> str:
    """'weights' when only the model's weights identity (e.g. a new Hub commit) differs, else 'model'."""
    a, b = dict(old.get("model") or {}), dict(new.get("model") or {})
    weights_differ = a.pop("weights", None) != b.pop("weights", None)
    return "weights" if weights_differ and a == b else "model"


def comparability_key(fp: Mapping[str, Any]) -> tuple[Any, ...]:
    """The values of COMPARABILITY_FIELDS in a fingerprint (None where missing)."""
    return tuple((fp.get(part) or {}).get(key) for part, key, _ in COMPARABILITY_FIELDS)


def comparability_part(values: Sequence[Any]) -> dict[str, Any] | None:
    """The comparability fields as a partial fingerprint, from their values in COMPARABILITY_FIELDS' order
    (e.g. read as columns); None when all are missing (no fingerprint recorded)."""
    if all(v is None for v in values):
        return None
    return {part: {key: v} for (part, key, _), v in zip(COMPARABILITY_FIELDS, values, strict=True)}


def comparability_breaks(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    """Why two runs' scores should not sit in one table unmarked (empty: comparable)."""
    return [
        reason
        for (_, _, reason), x, y in zip(COMPARABILITY_FIELDS, comparability_key(a), comparability_key(b), strict=True)
        if x != y
    ]
