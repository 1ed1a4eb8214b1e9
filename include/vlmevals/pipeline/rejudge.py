"""The `queue` step's part of a re-judge (vlmevals.runs.rejudge): the row from a DAG run's conf, and the
preparation that replaces inference's: the source's predictions copied into the new run's own folder, the judge
and the dataset checked, the fingerprint recorded.

Copied, not linked: VLMEvalKit's evaluation may rewrite the prediction file it scores (circular MCQ does), and
the source run's files must never change. Only the predictions are copied, none of the source judge's
intermediate files, so the new judge really judges (its repeated requests are the judge cache's business).
"""

from __future__ import annotations

import copy
import logging
import shutil
from typing import Any

from sqlalchemy import Engine

from vlmevals.core.settings import Settings
from vlmevals.db.engine import session_scope
from vlmevals.pipeline.context import load_context
from vlmevals.pipeline.prepare import check_judge, dataset
from vlmevals.results.fingerprint import fingerprint_hash
from vlmevals.runs import lifecycle as runs
from vlmevals.runs import rejudge
from vlmevals.vlmevalkit.command import python_executable
from vlmevals.vlmevalkit.versions import vlmeval_version

log = logging.getLogger(__name__)

# run-specific parts of the source's fingerprint that say nothing about the new run
_NOT_INHERITED = ("concurrency", "judge_concurrency", "judge_usage")


def create_from_conf(
    engine: Engine,
    conf: dict[str, Any],
    settings: Settings,
    *,
    triggered_by: str,
    user: str | None,
    dag_id: str,
    dag_run_id: str,
) -> int:
    """A re-judge run for a DAG run started with `source_run_id` in its conf (form or REST)."""
    with session_scope(engine) as s:
        run = rejudge.create_rejudge(
            s,
            int(conf["source_run_id"]),
            judge=conf.get("judge") or None,
            force=bool(conf.get("force")),
            settings=settings,
            triggered_by=triggered_by,
            user=user,
            dag_id=dag_id,
            dag_run_id=dag_run_id,
        )
        return run.id


def _fingerprint(source_fp: dict[str, Any], judge: str, settings: Settings, source_id: int) -> dict[str, Any]:
    """The source's fingerprint (what made the predictions) with the new judge."""
    fp = {k: copy.deepcopy(v) for k, v in source_fp.items() if k not in _NOT_INHERITED}
    fp["judge"] = {"name": judge, "base_url": settings.judge_base_url if judge != "exact_matching" else None}
    fp["rejudged_from"] = source_id
    return fp


def prepare(engine: Engine, run_id: int, settings: Settings) -> tuple[int, str | None, int | None] | None:
    """For a re-judge run, what `queue` would check, without weights or GPUs: (0 slots, VLMEvalKit version,
    rows); None for any other run."""
    with session_scope(engine) as s:
        run = runs.get_run(s, run_id)
        if run.source_run_id is None:
            return None
        source = runs.get_run(s, run.source_run_id)
        predictions = rejudge.source_predictions(source)  # it may have been cleaned up since the trigger
        judge = rejudge.judge_of(run, settings)
        fp = _fingerprint(source.fingerprint or {}, judge, settings, source.id)
        source_id = source.id
    check_judge(engine, run_id, settings)
    info = dataset(engine, run_id, settings)
    ctx = load_context(engine, run_id)
    ctx.pred_root.mkdir(parents=True, exist_ok=True)
    target = ctx.pred_root / predictions.name
    shutil.copy2(predictions, target)
    log.info("re-judge of eval run %s: predictions %s copied to %s", source_id, predictions, target)
    python = python_executable(settings)
    version = vlmeval_version(python, str(settings.vlmeval_root) if settings.vlmeval_root else None)
    with session_scope(engine) as s:
        runs.set_fingerprint(s, run_id, fp, fingerprint_hash(fp))
    return 0, version, info.rows
