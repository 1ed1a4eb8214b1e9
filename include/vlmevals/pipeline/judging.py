"""Judging through the gateway: what a VLMEvalKit process that scores with an LLM judge runs inside.

`judging()` claims the step's share of the judge endpoint, starts the judge gateway on loopback for as long as
VLMEvalKit runs, and afterwards adds what the judging cost to the run (`judge_usage`) and releases the share,
whatever happened. With exact matching, or no EVALS_JUDGE_BASE_URL (VLMEvalKit then calls OpenAI itself, with
OPENAI_API_KEY), it does nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from vlmevals.core.settings import Settings
from vlmevals.db.engine import session_scope
from vlmevals.pipeline.judge_gateway import JudgeGateway
from vlmevals.runs import concurrency, judge_usage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JudgeRoute:
    """Where VLMEvalKit sends judge requests, and how many at a time."""

    base_url: str
    api_nproc: int


def uses_llm_judge(judge: str | None, settings: Settings) -> bool:
    return (judge or settings.judge) != "exact_matching"


@contextmanager
def judging(engine: Engine, run_id: int, judge: str | None, settings: Settings) -> Iterator[JudgeRoute | None]:
    """The gateway's route while inside (None: no gateway for this judge); usage recorded on the way out."""
    upstream = settings.judge_base_url
    if not uses_llm_judge(judge, settings) or not upstream:
        yield None
        return
    part = concurrency.claim_judge(engine, run_id, upstream, settings.judge_max_concurrency, settings)
    gateway = JudgeGateway(engine, settings, upstream=upstream, max_concurrency=int(part["api_nproc"]))
    try:
        with gateway:
            yield JudgeRoute(gateway.base_url, int(part["api_nproc"]))
    finally:
        block = gateway.block()
        with session_scope(engine) as s:
            concurrency.release_judge(s, run_id)
            total = judge_usage.record(s, run_id, block)
        log.info(
            "judge %s: %s requests (%s from the cache), %s prompt + %s completion tokens, %s failed%s",
            block["model"], block["requests"], block["cached"], block["prompt_tokens"], block["completion_tokens"],
            block["failed"], f", ${total['cost_usd']} so far" if total.get("cost_usd") is not None else "",
        )  # fmt: skip


def judge_failure(usage: dict[str, Any] | None) -> str:
    """The judge's last error, for a run whose every sample's judging failed."""
    if not usage:
        return "no judge answer reached VLMEvalKit"
    return str(usage.get("last_error") or f"{usage.get('failed', 0)} judge request(s) failed")
