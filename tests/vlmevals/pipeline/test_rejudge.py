"""Re-judging with a real VLMEvalKit `--mode eval` and an LLM judge (the OpenAI-protocol double on loopback)
behind the judge gateway: predictions that need extraction, the judge's tokens and the cache, judge failures."""

from __future__ import annotations

import csv
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from vlmevals.core.errors import ConflictError, InvalidRequestError, VLMEvalFailure
from vlmevals.core.settings import Settings, get_settings
from vlmevals.core.vocabulary import RunStatus
from vlmevals.db.engine import session_scope
from vlmevals.db.models import EvalSample
from vlmevals.pipeline import steps
from vlmevals.runs import lifecycle as runs
from vlmevals.runs import rejudge

from tests.doubles.openai_server import ServerHandle, serve
from tests.vlmevals.pipeline.rejudge_data import DATA, MODEL, TASK, completed_source

pytestmark = pytest.mark.integration


@pytest.fixture()
def judge(demo_assets: dict[str, Path]) -> Iterator[ServerHandle]:
    with serve(mode="fixed", text="A", model_name="gpt-4o-mini-2024-07-18") as server:
        yield server


@pytest.fixture()
def settings(judge: ServerHandle, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    monkeypatch.setenv("EVALS_JUDGE_BASE_URL", judge.base_url)
    monkeypatch.setenv("EVALS_JUDGE_RETRIES", "1")
    monkeypatch.setenv("EVALS_JUDGE_BACKOFF_S", "0.01")
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


def _rejudge(engine: Any, source: int, settings: Settings, judge: str = "gpt-4o-mini", force: bool = False) -> int:
    with session_scope(engine) as s:
        run = rejudge.create_rejudge(
            s, source, judge=judge, force=force, settings=settings, triggered_by="api", user=None, dag_id="eval_run"
        )
        run_id = run.id
    info = steps.queue_step(
        engine,
        {"eval_run_id": run_id},
        dag_id="eval_run",
        dag_run_id=f"t__{time.time_ns()}",
        run_type="manual",
        user=None,
        settings=settings,
    )
    assert info["branch"] == ["scoring"], "a re-judge skips every inference task"
    steps.scoring_step(engine, run_id, 1, settings)
    steps.ingest_step(engine, run_id)
    return run_id


def test_rejudge_scores_with_the_judge_counts_it_and_a_second_one_costs_nothing(
    seeded: Any, demo_assets: dict[str, Path], judge: ServerHandle, settings: Settings
) -> None:
    with seeded.begin() as conn:
        conn.execute(text("TRUNCATE judge_cache"))
    source = completed_source(seeded, demo_assets[DATA])
    first = _rejudge(seeded, source, settings)
    asked = judge.stats()
    with session_scope(seeded) as s:
        run = runs.get_run(s, first)
        usage, status, primary, src = run.fingerprint["judge_usage"], run.status, run.primary_metric, run.source_run_id
        rows = runs.get_run(s, source).progress_total
    assert status == RunStatus.COMPLETED and src == source
    with demo_assets[DATA].open(newline="", encoding="utf-8") as fh:
        answers = [r["answer"] for r in csv.DictReader(fh, delimiter="\t")]
    expected = sum(a == "A" for a in answers) / len(answers)
    assert primary == pytest.approx(expected), "every sentence was read as the judge's letter A"
    assert asked["chat_completions"] >= 2 and usage["requests"] == asked["chat_completions"]
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (asked["prompt_tokens"], asked["completion_tokens"])
    assert usage["cached"] == 0 and rows is None

    judge.reset_stats()
    second = _rejudge(seeded, source, settings)
    with session_scope(seeded) as s:
        again = runs.get_run(s, second)
        assert again.status == RunStatus.COMPLETED and again.primary_metric == pytest.approx(expected)
        assert again.fingerprint["judge_usage"]["cached"] == usage["requests"]
    assert judge.stats()["chat_completions"] == 0, "the identical re-judge was answered by the cache"


def test_a_judge_down_for_good_fails_the_run_instead_of_scoring_zero(
    seeded: Any, demo_assets: dict[str, Path], judge: ServerHandle, settings: Settings
) -> None:
    with seeded.begin() as conn:
        conn.execute(text("TRUNCATE judge_cache"))
    judge.set_policy(fail_rate=1.0, fail_mode="500")
    source = completed_source(seeded, demo_assets[DATA])
    with pytest.raises(VLMEvalFailure, match=r"judge failed on every sample .*judge answered 500"):
        _rejudge(seeded, source, settings)
    with session_scope(seeded) as s:
        failed = s.query(EvalSample).filter(EvalSample.judge_failed.is_(True)).count()
        total = s.query(EvalSample).count()
    assert failed == total > 0, "every sample flagged judge_failed (none of them a wrong answer)"


def test_refusals_name_the_fix(seeded: Any, demo_assets: dict[str, Path], settings: Settings) -> None:
    source = completed_source(seeded, demo_assets[DATA])
    with session_scope(seeded) as s, pytest.raises(ConflictError, match=r"already judged by exact_matching.*force"):
        rejudge.check_source(s, source, "exact_matching", False, settings)
    with session_scope(seeded) as s:
        queued = runs.create_run(s, TASK, MODEL, triggered_by="api", forced=True).id
    with session_scope(seeded) as s, pytest.raises(ConflictError, match="is queued: only a completed run"):
        rejudge.check_source(s, queued, "gpt-4o-mini", False, settings)
    with session_scope(seeded) as s:
        pred = rejudge.source_predictions(runs.get_run(s, source))
    pred.unlink()
    with session_scope(seeded) as s, pytest.raises(InvalidRequestError, match="no predictions to re-judge"):
        rejudge.check_source(s, source, "gpt-4o-mini", False, settings)
