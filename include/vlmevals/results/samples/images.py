"""Sample images from the dataset TSV VLMEvalKit ran on (it keeps them base64-encoded in the `image` column)."""

from __future__ import annotations

import ast
import base64
import binascii
from functools import lru_cache
from pathlib import Path

from vlmevals.core.errors import NotFoundError

_MAGIC = ((b"\x89PNG", "image/png"), (b"\xff\xd8", "image/jpeg"), (b"GIF8", "image/gif"), (b"BM", "image/bmp"))


def image_mime(data: bytes) -> str:
    """The MIME type from the magic bytes (browsers need it to show the image)."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return next((m for magic, m in _MAGIC if data.startswith(magic)), "application/octet-stream")


@lru_cache(maxsize=2)
def _tsv_images(path: str, mtime_ns: int) -> dict[str, str]:
    """index -> image cell of a TSV (cached per file version; read once, only two columns)."""
    import pandas as pd

    cols = pd.read_csv(path, sep="\t", nrows=0).columns
    if "index" not in cols or "image" not in cols:
        return {}
    df = pd.read_csv(path, sep="\t", usecols=["index", "image"], dtype=str, keep_default_na=False)
    return dict(zip(df["index"].astype(str), df["image"], strict=True))


def _image_cells(images: dict[str, str], index: str, tsv_name: str) -> list[str]:
    """The base64 cells of one sample: follows short references to another row, unpacks a list cell."""
    cell = images.get(str(index))
    for _ in range(3):  # follow VLMEvalKit's short references to another row's image
        if cell is not None and len(cell) <= 64 and cell in images:
            cell = images[cell]
    if not cell:
        raise NotFoundError(f"sample {index!r} has no image in {tsv_name}")
    if cell.startswith("["):
        try:
            return [str(p) for p in ast.literal_eval(cell)]
        except (ValueError, SyntaxError):
            pass
    return [cell]


def sample_image(tsv: Path, index: str, n: int = 0) -> tuple[bytes, str]:
    """The n-th image of sample `index` in a VLMEvalKit TSV: bytes and MIME type.

    Handles VLMEvalKit's conventions: a short cell naming another row's index (shared images) and a cell holding
    a Python list of base64 strings (multi-image samples). Raises NotFoundError naming what is missing.
    """
    if not tsv.exists():
        raise NotFoundError(f"dataset file {tsv} is missing; put the TSV in LMUData to see images")
    images = _tsv_images(str(tsv), tsv.stat().st_mtime_ns)
    if not images:
        raise NotFoundError(f"{tsv.name} has no 'image' column (images may be stored as paths); no image to show")
    parts = _image_cells(images, index, tsv.name)
    if not 0 <= n < len(parts):
        raise NotFoundError(f"sample {index!r} has {len(parts)} image(s); n must be 0..{len(parts) - 1}")
    try:
        data = base64.b64decode(parts[n], validate=False)
    except (binascii.Error, ValueError) as err:
        raise NotFoundError(f"image of sample {index!r} in {tsv.name} is not base64 ({err})") from err
    return data, image_mime(data)
