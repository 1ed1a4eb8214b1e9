"""The judge gateway against a real OpenAI-protocol judge on loopback and our real PostgreSQL (the cache)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from vlmevals.core.settings import Settings
from vlmevals.pipeline.judge_gateway import JudgeGateway, retry_after_s

from tests.doubles.openai_server import ServerHandle, serve

pytestmark = pytest.mark.integration


@pytest.fixture()
def judge() -> Iterator[ServerHandle]:
    with serve(mode="fixed", text="B", model_name="gpt-4o-mini-2024-07-18") as server:
        yield server


@pytest.fixture()
def cache(engine: Any) -> Any:
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE judge_cache"))
    return engine


def _settings(judge: ServerHandle, **env: Any) -> Settings:
    base = {
        "EVALS_JUDGE_BASE_URL": judge.base_url,
        "EVALS_JUDGE_RETRIES": 2,
        "EVALS_JUDGE_BACKOFF_S": 0.01,
        "EVALS_JUDGE_PRICES": {"gpt-4o-mini": {"input": 0.15, "output": 0.6}},
    }
    return Settings.model_validate({**base, **env})


def _ask(gw: JudgeGateway, question: str) -> httpx.Response:
    body = {"model": "gpt-4o-mini-2024-07-18", "messages": [{"role": "user", "content": question}], "temperature": 0}
    return httpx.post(f"{gw.base_url}/chat/completions", json=body, timeout=30)


def test_tokens_counted_equal_the_judges_and_a_repeat_comes_from_the_cache(judge: ServerHandle, cache: Any) -> None:
    settings = _settings(judge)
    with JudgeGateway(cache, settings, upstream=judge.base_url, max_concurrency=2) as gw:
        answers = [_ask(gw, q) for q in ("which option is it? one", "which option is it? two", "hello")]
        again = _ask(gw, "which option is it? one")
        block = gw.block()
    assert [r.status_code for r in answers] == [200, 200, 200]
    assert again.json()["choices"][0]["message"]["content"] == "B"
    stats = judge.stats()
    assert stats["chat_completions"] == 3, "the repeat was answered by the cache, not the judge"
    assert (block["prompt_tokens"], block["completion_tokens"]) == (stats["prompt_tokens"], stats["completion_tokens"])
    assert (block["requests"], block["cached"], block["answered"], block["failed"]) == (4, 1, 3, 0)
    expected = (stats["prompt_tokens"] * 0.15 + stats["completion_tokens"] * 0.6) / 1e6
    assert block["cost_usd"] == pytest.approx(expected) and block["model"] == "gpt-4o-mini-2024-07-18"

    with JudgeGateway(cache, settings, upstream=judge.base_url, max_concurrency=2) as gw2:  # another worker
        _ask(gw2, "which option is it? two")
    assert judge.stats()["chat_completions"] == 3 and gw2.block()["cached"] == 1


def test_cache_off_asks_the_judge_every_time(judge: ServerHandle, cache: Any) -> None:
    with JudgeGateway(
        cache, _settings(judge, EVALS_JUDGE_CACHE="off"), upstream=judge.base_url, max_concurrency=1
    ) as gw:
        _ask(gw, "same question")
        _ask(gw, "same question")
    assert judge.stats()["chat_completions"] == 2 and gw.block()["cached"] == 0


def test_rate_limit_is_retried_after_what_retry_after_says(judge: ServerHandle, cache: Any) -> None:
    judge.set_policy(fail_every=2, fail_mode="429", retry_after_s=0.2)  # every second call is refused once
    with JudgeGateway(cache, _settings(judge), upstream=judge.base_url, max_concurrency=1) as gw:
        got = [_ask(gw, f"question {i}").status_code for i in range(3)]
    block = gw.block()
    assert got == [200, 200, 200]
    assert block["failures"] == {"http_429": judge.stats()["failed"]} and block["retries"] == judge.stats()["failed"]
    assert block["failed"] == 0 and block["upstream_calls"] == judge.stats()["chat_completions"]


def test_a_judge_down_for_good_is_a_failure_after_the_retries(judge: ServerHandle, cache: Any) -> None:
    judge.set_policy(fail_rate=1.0, fail_mode="500")
    with JudgeGateway(cache, _settings(judge), upstream=judge.base_url, max_concurrency=1) as gw:
        probe = _ask(gw, "hello")
        again = _ask(gw, "hello")
    block = gw.block()
    assert probe.status_code == 500 and "judge answered 500" in probe.json()["error"]["message"]
    assert again.status_code == 500, "a failure is never cached"
    assert judge.stats()["chat_completions"] == 6, "1 call + 2 retries, twice"
    assert (block["failed"], block["failures"], block["probe_failed"]) == (2, {"http_5xx": 6}, True)


def test_retry_after_reads_seconds_and_dates() -> None:
    assert retry_after_s("3") == 3.0 and retry_after_s("100000") == 120.0
    assert retry_after_s("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert retry_after_s(None) is None and retry_after_s("soon") is None
