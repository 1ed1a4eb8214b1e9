"""Dataset checks done before a GPU slot is taken.

VLMEvalKit re-downloads a registered dataset whose TSV is missing or whose md5 differs, which fails on an
offline worker only after the model is loaded. We check presence and md5 first, with the md5s cached by
(size, mtime) so a large TSV is hashed once.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from vlmevals.core.errors import InvalidRequestError
from vlmevals.core.settings import Settings

_REGISTRY_MD5_CODE = """
import json, sys
name = sys.argv[1]
from vlmeval.dataset import DATASET_CLASSES
for cls in DATASET_CLASSES:
    try:
        if name in cls.supported_datasets():
            print(json.dumps({"registered": True, "md5": getattr(cls, "DATASET_MD5", {}).get(name),
                              "class": cls.__name__}))
            break
    except Exception:
        pass
else:
    print(json.dumps({"registered": False}))
"""


# What VLMEvalKit's image datasets read from a TSV (vlmeval/dataset/image_base.py, image_mcq.py): `index`;
# `image` (base64) or `image_path`; `question`; `answer` to score; a custom dataset with columns A and B is MCQ.
REQUIRED_COLUMNS = ("index", "question", "answer")
IMAGE_COLUMNS = ("image", "image_path")


def check_columns(tsv: Path) -> None:
    """Fail naming the column when a TSV lacks one VLMEvalKit needs; reads the header line only.

    Applied to datasets VLMEvalKit cannot md5-check (custom TSVs, registered names without an md5): an official
    file is trusted as VLMEvalKit ships it (test splits without `answer` are scored elsewhere).
    """
    with tsv.open("r", encoding="utf-8", errors="replace") as fh:
        header = fh.readline().rstrip("\r\n").split("\t")
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if not any(c in header for c in IMAGE_COLUMNS):
        missing.append("image (or image_path)")
    if missing:
        kind = "an MCQ" if "A" in header and "B" in header else "a"
        raise InvalidRequestError(
            f"dataset TSV {tsv} has no {', '.join(repr(c) for c in missing)} column; {kind} VLMEvalKit dataset "
            f"needs {', '.join(REQUIRED_COLUMNS)} and image or image_path (MCQ: also the option columns A, B, ...). "
            f"Columns found: {', '.join(header[:20])}. Fix the file and trigger the run again"
        )


@dataclass
class DatasetInfo:
    path: Path
    md5: str
    rows: int | None
    registered: bool
    expected_md5: str | None


def file_md5(path: Path, cache_file: Path | None = None) -> str:
    st = path.stat()
    key = f"{path.resolve()}:{st.st_size}:{st.st_mtime_ns}"
    cache: dict[str, str] = {}
    if cache_file and cache_file.exists():
        try:
            cache = json.loads(cache_file.read_text())
        except json.JSONDecodeError:
            cache = {}
    if key in cache:
        return cache[key]
    h = hashlib.md5()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    digest = h.hexdigest()
    if cache_file:
        cache[key] = digest
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(cache))
        tmp.replace(cache_file)
    return digest


def registry_info(name: str, python: str, cache_file: Path | None = None) -> dict[str, object]:
    """Whether VLMEvalKit knows `name` and its expected md5 (a subprocess: importing vlmeval costs seconds)."""
    cache: dict[str, dict[str, object]] = {}
    if cache_file and cache_file.exists():
        try:
            cache = json.loads(cache_file.read_text())
        except json.JSONDecodeError:
            cache = {}
    if name in cache:
        return cache[name]
    res = subprocess.run([python, "-c", _REGISTRY_MD5_CODE, name], capture_output=True, text=True, timeout=300)
    try:
        info: dict[str, object] = json.loads(res.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        return {"registered": False, "error": res.stderr[-500:]}
    if cache_file:
        cache[name] = info
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        cache_file.write_text(json.dumps(cache))
    return info


def check_dataset(data: str, settings: Settings, *, python: str, version: str) -> DatasetInfo:
    """Fail with a readable message when the TSV is missing or differs from VLMEvalKit's expected md5."""
    tsv = settings.lmu_data / f"{data}.tsv"
    cache_dir = settings.outputs_dir / ".cache"
    if not tsv.exists():
        raise InvalidRequestError(
            f"dataset TSV {tsv} is missing: put {data}.tsv into LMUData ({settings.lmu_data}) or set LMUData "
            "to the folder that has it (workers cannot download datasets at run time)"
        )
    md5 = file_md5(tsv, cache_dir / "md5.json")
    info = registry_info(data, python, cache_dir / f"registry-{version.replace('/', '_')}.json")
    expected = info.get("md5") if info.get("registered") else None
    if expected and expected != md5:
        raise InvalidRequestError(
            f"dataset TSV {tsv} has md5 {md5} but VLMEvalKit expects {expected} for {data}; VLMEvalKit would "
            "try to re-download it. Replace the file with the official one."
        )
    if not expected:
        check_columns(tsv)
    from vlmevals.vlmevalkit.outputs import count_rows

    return DatasetInfo(tsv, md5, count_rows(tsv), bool(info.get("registered")), str(expected) if expected else None)
