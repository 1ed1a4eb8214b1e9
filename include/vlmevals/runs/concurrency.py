"""Served models: one cap on concurrent requests per endpoint, over every running eval run that calls it.

At inference start a run of an endpoint model claims `min(wanted, cap - held)` request slots, where `held` is what
the other running runs on the same base URL claimed; the read and the claim happen under a PostgreSQL advisory
lock on the base URL, so two runs starting together cannot both see the free slots. The claim is stored in the
run's fingerprint document (`concurrency`, not hashed: it does not change results) and released when the run
leaves `running`. With no slot free the run waits, polling, up to EVALS_ENDPOINT_WAIT_S.

Judge endpoints get the same mechanism (`claim_judge`, cap EVALS_JUDGE_MAX_CONCURRENCY): a scoring step claims
its share of the judge's base URL as `judge_concurrency` (with the URL in it: the judge is not a catalogue
model) and releases it when its judging ends; the judge gateway holds the scoring step to that share.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, func, or_, select, text
from sqlalchemy.orm import Session

from vlmevals.core.errors import VLMEvalFailure
from vlmevals.core.settings import Settings
from vlmevals.core.vocabulary import RunStatus
from vlmevals.db.engine import session_scope
from vlmevals.db.models import EvalRun, Model

log = logging.getLogger(__name__)

LOCK_NAMESPACE = "vlmevals-endpoint:"
JUDGE_PART = "judge_concurrency"


def held_elsewhere(session: Session, base_url: str, run_id: int) -> int:
    """Request slots the other running runs on this endpoint claimed."""
    claimed = EvalRun.fingerprint[("concurrency", "api_nproc")].as_integer()
    endpoint = EvalRun.fingerprint[("concurrency", "endpoint")].astext  # a managed server's URL is the run's
    total = session.scalar(
        select(func.coalesce(func.sum(claimed), 0))
        .join(Model, Model.id == EvalRun.model_id)
        .where(EvalRun.status == RunStatus.RUNNING, EvalRun.id != run_id)
        .where(or_(Model.endpoint_base_url == base_url, endpoint == base_url))
    )
    return int(total or 0)


def judge_held_elsewhere(session: Session, base_url: str, run_id: int) -> int:
    """Judge request slots the other running runs' scoring steps claimed on this judge endpoint."""
    claimed = EvalRun.fingerprint[(JUDGE_PART, "api_nproc")].as_integer()
    total = session.scalar(
        select(func.coalesce(func.sum(claimed), 0)).where(
            EvalRun.status == RunStatus.RUNNING,
            EvalRun.id != run_id,
            EvalRun.fingerprint[(JUDGE_PART, "endpoint")].as_string() == base_url,
        )
    )
    return int(total or 0)


Held = Callable[[Session, str, int], int]


def _try_claim(
    session: Session,
    run_id: int,
    base_url: str,
    wanted: int,
    cap: int,
    held_by: Held = held_elsewhere,
    part_name: str = "concurrency",
) -> dict[str, Any] | None:
    session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": LOCK_NAMESPACE + base_url})
    held = held_by(session, base_url, run_id)
    granted = min(wanted, cap - held)
    if granted < 1:
        return None
    part: dict[str, Any] = {
        "api_nproc": granted,
        "requested": wanted,
        "endpoint_cap": cap,
        "held_by_others": held,
        "endpoint": base_url,  # a managed server's URL is the run's, not its model's
    }
    run = session.get_one(EvalRun, run_id)
    run.fingerprint = {**(run.fingerprint or {}), part_name: part}
    return part


def claim(
    engine: Engine, run_id: int, base_url: str, wanted: int, settings: Settings, cap: int | None = None
) -> dict[str, Any]:
    """The run's share of the endpoint (`api_nproc` granted, what was asked, the cap); waits while none is free.

    Owns its transactions: each try holds the endpoint's advisory lock only until it commits, and the claim must
    be visible to the other runs' tries while this one waits and then runs."""
    cap = cap or settings.endpoint_max_concurrency
    deadline = time.monotonic() + settings.endpoint_wait_s
    while True:
        with session_scope(engine) as s:
            part = _try_claim(s, run_id, base_url, wanted, cap)
        if part is not None:
            if part["api_nproc"] < wanted:
                log.info("endpoint %s: %s of %s requests granted (cap %s)", base_url, part["api_nproc"], wanted, cap)
            return part
        if time.monotonic() >= deadline:
            raise VLMEvalFailure(
                f"endpoint {base_url}: no request slot free within EVALS_ENDPOINT_WAIT_S={settings.endpoint_wait_s:g}"
                f" s (EVALS_ENDPOINT_MAX_CONCURRENCY={cap} held by other running runs)",
                retryable=True,
            )
        log.info("endpoint %s: all %s request slots held by other runs; waiting", base_url, cap)
        time.sleep(settings.endpoint_poll_s)


def claim_judge(engine: Engine, run_id: int, base_url: str, wanted: int, settings: Settings) -> dict[str, Any]:
    """A scoring step's share of the judge endpoint (cap EVALS_JUDGE_MAX_CONCURRENCY); waits while none is free.

    Owns its transactions for the reason `claim` does."""
    cap = settings.judge_max_concurrency
    deadline = time.monotonic() + settings.endpoint_wait_s
    while True:
        with session_scope(engine) as s:
            part = _try_claim(s, run_id, base_url, min(wanted, cap), cap, judge_held_elsewhere, JUDGE_PART)
        if part is not None:
            return part
        if time.monotonic() >= deadline:
            raise VLMEvalFailure(
                f"judge {base_url}: no request slot free within EVALS_ENDPOINT_WAIT_S={settings.endpoint_wait_s:g} s"
                f" (EVALS_JUDGE_MAX_CONCURRENCY={cap} held by other scoring steps)",
                retryable=True,
            )
        log.info("judge %s: all %s request slots held by other scoring steps; waiting", base_url, cap)
        time.sleep(settings.endpoint_poll_s)


def release_judge(session: Session, run_id: int) -> None:
    """The scoring step's judging is over: its judge share goes back (kept in the document, at 0, for the record)."""
    run = session.get_one(EvalRun, run_id)
    part = (run.fingerprint or {}).get(JUDGE_PART)
    if part:
        run.fingerprint = {**run.fingerprint, JUDGE_PART: {**part, "api_nproc": 0, "granted": part["api_nproc"]}}
