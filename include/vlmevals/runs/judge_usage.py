"""What one run's judging cost: requests, cache answers, tokens, failures by kind, latency and price.

Counted by the judge gateway (vlmevals.pipeline.judge_gateway) while a scoring step runs, and stored in the run's
fingerprint document as `judge_usage` (not hashed: it says what judging cost, not what the score is), so the run
API, the fingerprint view and sums over a suite or checkpoint read one place. A retried scoring step adds to the
counts of the earlier attempt (both were paid for).
"""

from __future__ import annotations

import re
import statistics
import threading
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from vlmevals.core.settings import JudgePrice
from vlmevals.db.models import EvalRun

USAGE_KEY = "judge_usage"
SUMMED = (
    "requests",
    "cached",
    "upstream_calls",
    "answered",
    "failed",
    "retries",
    "prompt_tokens",
    "completion_tokens",
)
_DATED = re.compile(r"-\d{4}-\d{2}-\d{2}$")  # VLMEvalKit sends the dated name (gpt-4o-mini-2024-07-18)


def price_for(model: str, prices: dict[str, JudgePrice]) -> JudgePrice | None:
    """The configured price of a judge model, by the name sent or the same name without its date."""
    return prices.get(model) or prices.get(_DATED.sub("", model))


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return round(values[0], 2)
    return round(statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1], 2)


def _p50_p95(values: list[float]) -> dict[str, float | None]:
    return {"p50": _percentile(values, 50), "p95": _percentile(values, 95)}


@dataclass
class JudgeUsage:
    """Thread-safe counters of one gateway (the request threads of one scoring step)."""

    requests: int = 0  # requests VLMEvalKit sent to the gateway
    cached: int = 0  # answered from the judge cache
    upstream_calls: int = 0  # HTTP calls to the judge, retries included
    answered: int = 0  # answered by the judge
    failed: int = 0  # failed after the gateway's retries (VLMEvalKit got the error)
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    failures: dict[str, int] = field(default_factory=dict)  # each failed call, by kind (http_429, connect, ...)
    models: set[str] = field(default_factory=set)
    probe_failed: bool = False  # VLMEvalKit's "hello" probe failed for good: it fell back to exact matching
    last_error: str | None = None
    latency_ms: list[float] = field(default_factory=list)  # the judge's time per answered request
    overhead_ms: list[float] = field(default_factory=list)  # the gateway's own time per request (cache included)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: int) -> None:
        with self.lock:
            for name, n in counts.items():
                setattr(self, name, getattr(self, name) + n)

    def failure(self, kind: str, message: str) -> None:
        with self.lock:
            self.failures[kind] = self.failures.get(kind, 0) + 1
            self.last_error = message

    def answer(self, model: str, usage: dict[str, Any] | None, latency_ms: float) -> None:
        with self.lock:
            self.answered += 1
            self.models.add(model)
            self.latency_ms.append(latency_ms)
            self.prompt_tokens += int((usage or {}).get("prompt_tokens") or 0)
            self.completion_tokens += int((usage or {}).get("completion_tokens") or 0)

    def block(self, prices: dict[str, JudgePrice], *, cache_on: bool, endpoint: str, cap: int) -> dict[str, Any]:
        """The `judge_usage` document: counts, latency percentiles and the cost when the judge has a price."""
        with self.lock:
            out: dict[str, Any] = {name: getattr(self, name) for name in SUMMED}
            model = sorted(self.models)[0] if self.models else None
            price = price_for(model, prices) if model else None
            cost = (
                (self.prompt_tokens * price.input + self.completion_tokens * price.output) / 1e6
                if price is not None
                else None
            )
            out.update(
                model=model,
                endpoint=endpoint,
                max_concurrency=cap,
                cache="on" if cache_on else "off",
                failures=dict(self.failures),
                probe_failed=self.probe_failed,
                last_error=self.last_error,
                latency_ms=_p50_p95(self.latency_ms),
                gateway_overhead_ms=_p50_p95(self.overhead_ms),
                price_per_mtok=price.model_dump() if price else None,
                cost_usd=round(cost, 9) if cost is not None else None,
            )
            return out


def merged(earlier: dict[str, Any] | None, latest: dict[str, Any]) -> dict[str, Any]:
    """An attempt's block added to an earlier attempt's: counts and failures summed, the rest the latest's."""
    if not earlier:
        return latest
    out = dict(latest)
    for name in SUMMED:
        out[name] = int(earlier.get(name) or 0) + int(latest.get(name) or 0)
    kinds = dict(earlier.get("failures") or {})
    for kind, n in (latest.get("failures") or {}).items():
        kinds[kind] = kinds.get(kind, 0) + n
    out["failures"] = kinds
    if earlier.get("cost_usd") is not None or latest.get("cost_usd") is not None:
        out["cost_usd"] = round(float(earlier.get("cost_usd") or 0) + float(latest.get("cost_usd") or 0), 9)
    out["attempts"] = int(earlier.get("attempts") or 1) + 1
    return out


def record(session: Session, run_id: int, block: dict[str, Any]) -> dict[str, Any]:
    """Add a scoring attempt's block to the run's fingerprint document (`judge_usage`); returns the sum."""
    fp = session.execute(select(EvalRun.fingerprint).where(EvalRun.id == run_id).with_for_update()).scalar_one()
    total = merged((fp or {}).get(USAGE_KEY), block)
    session.execute(update(EvalRun).where(EvalRun.id == run_id).values(fingerprint={**(fp or {}), USAGE_KEY: total}))
    return total


def of(fingerprint: dict[str, Any] | None) -> dict[str, Any] | None:
    """A run's judge usage, from its fingerprint document (None: no LLM judge went through the gateway)."""
    got = (fingerprint or {}).get(USAGE_KEY)
    return dict(got) if isinstance(got, dict) else None
