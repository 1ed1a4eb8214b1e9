"""A run's artifact files (VLMEvalKit predictions, metric tables, worker logs), read-only and confined to the
run's artifacts folder: no `..`, no absolute paths, no symlink that resolves outside, whatever the encoding."""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path, PurePosixPath
from typing import Annotated

from fastapi import APIRouter
from fastapi import Path as PathParam
from fastapi.responses import FileResponse
from sqlalchemy.orm import Session

from vlmevals.api.deps import SessionDep
from vlmevals.api.errors import responses
from vlmevals.api.resources import ArtifactFile
from vlmevals.api.schemas.envelopes import ArtifactList
from vlmevals.core.errors import InvalidRequestError, NotFoundError
from vlmevals.runs import lifecycle as run_rows

router = APIRouter(prefix="/runs/{run_id}/artifacts", tags=["artifacts"])
RunId = Annotated[int, PathParam(ge=1, le=2**63 - 1, description="eval run id")]
MAX_FILES = 5000
ARTIFACT_PATH_PATTERN = r"^[^\\\x00]+$"  # what the route accepts; '..' and absolute paths find no file (404)
ArtifactPath = Annotated[
    str,
    PathParam(
        pattern=ARTIFACT_PATH_PATTERN, description="file path relative to the artifacts folder, e.g. worker_stderr.log"
    ),
]
TEXT_SUFFIXES = {".log", ".txt", ".json", ".csv", ".tsv", ".yaml", ".yml", ".md", ".jsonl", ".out", ".err"}


def _root(session: Session, run_id: int) -> Path:
    run = run_rows.get_run(session, run_id)
    return Path(run.artifacts_dir or run_rows.artifacts_dir_for(run.id))


def _inside(path: Path, root: Path) -> bool:
    return path == root or path.is_relative_to(root)


def resolve_artifact(root: Path, rel: str) -> Path:
    """The real file `rel` names under `root`, or a 4xx error; symlinks are followed only while inside."""
    if not re.match(ARTIFACT_PATH_PATTERN, rel):
        raise InvalidRequestError(
            "path: give a file path relative to the run's artifacts folder, "
            "e.g. worker_stderr.log (no NUL or backslash)"
        )
    p = PurePosixPath(rel)
    if p.is_absolute() or ".." in p.parts:  # no such file *in the run*: the same 404 as any other missing name
        raise NotFoundError(
            f"no artifact {rel!r}: paths are relative to the run's artifacts folder, without '..'; "
            "list the files with GET .../artifacts"
        )
    real_root = root.resolve()
    target = (real_root / p).resolve()
    if not _inside(target, real_root) or not target.is_file():
        raise NotFoundError(f"no artifact {rel!r} in this run; list the files with GET .../artifacts")
    return target


def list_artifacts(root: Path) -> tuple[list[ArtifactFile], bool]:
    """Files under `root` (symlinked files only if they resolve inside), sorted, at most MAX_FILES."""
    if not root.is_dir():
        return [], False
    real_root = root.resolve()
    out: list[ArtifactFile] = []
    for dirpath, dirnames, filenames in os.walk(real_root, followlinks=False):
        dirnames.sort()
        for name in sorted(filenames):
            full = Path(dirpath) / name
            try:
                real = full.resolve()
                if not _inside(real, real_root) or not real.is_file():
                    continue
                st = real.stat()
            except OSError:
                continue
            out.append(
                ArtifactFile(
                    name=full.relative_to(real_root).as_posix(),
                    size=st.st_size,
                    modified=dt.datetime.fromtimestamp(st.st_mtime, dt.UTC),
                )
            )
            if len(out) >= MAX_FILES:
                return out, True
    out.sort(key=lambda f: f.name)
    return out, False


@router.get("", response_model=ArtifactList, responses=responses(401, 403, 404, 422))
def get_artifacts(run_id: RunId, session: SessionDep) -> ArtifactList:
    """The run's files: name (relative path), size in bytes, modification time. Empty before the run starts."""
    files, truncated = list_artifacts(_root(session, run_id))
    return ArtifactList(data=files, count=len(files), truncated=truncated)


@router.get(
    "/{path:path}",
    response_class=FileResponse,
    responses={
        **responses(401, 403, 404, 422),
        200: {
            "description": "the file: text types as text/plain, others as a download",
            "content": {"text/plain": {}, "application/octet-stream": {}},
        },
    },
)
def get_artifact(run_id: RunId, path: ArtifactPath, session: SessionDep) -> FileResponse:
    """One artifact's content (logs and metric tables as text; predictions .xlsx/.pkl as downloads)."""
    target = resolve_artifact(_root(session, run_id), path)
    headers = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox; default-src 'none'"}
    if target.suffix.lower() in TEXT_SUFFIXES:
        return FileResponse(
            target,
            media_type="text/plain; charset=utf-8",
            headers=headers,
            content_disposition_type="inline",
            filename=target.name,
        )
    return FileResponse(target, media_type="application/octet-stream", headers=headers, filename=target.name)
