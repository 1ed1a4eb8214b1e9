"""Representations: a validated response model is answered as its own JSON bytes (FastAPI does not dump it a
second time), and a run's artifact links check the file where the run keeps it."""

from __future__ import annotations

import datetime as dt
import inspect
from pathlib import Path

from vlmevals.api import represent
from vlmevals.api.deps import paging
from vlmevals.api.schemas.envelopes import RunList
from vlmevals.db.models import EvalRun
from vlmevals.runs import lifecycle


def test_json_response_is_the_models_dump() -> None:
    body = RunList(data=[], count=3)
    r = represent.json_response(body)
    assert r.body == body.model_dump_json().encode() and r.media_type == "application/json"


def test_paging_needs_no_threadpool() -> None:
    assert inspect.iscoroutinefunction(paging)


def test_artifact_checked_in_the_runs_folder(tmp_path: Path) -> None:
    run = EvalRun(id=7, artifacts_dir=str(tmp_path), created_at=dt.datetime.now(dt.UTC))
    assert not represent._has_artifact(run, "worker_stderr.log")
    (tmp_path / "worker_stderr.log").write_text("x")
    assert represent._has_artifact(run, "worker_stderr.log")
    assert not represent._has_artifact(run, "missing.log")


def test_default_artifacts_dir_is_the_outputs_runs_folder() -> None:
    from vlmevals.core.settings import get_settings

    assert lifecycle.artifacts_dir_for(12) == str(get_settings().outputs_dir / "runs" / "12")
