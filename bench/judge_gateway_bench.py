"""The judge gateway's added latency per request: the same chat completions sent to the OpenAI-protocol double
directly and through the gateway (cache off: a pure pass-through with accounting), sequentially, p50/p95 of the
difference of the medians and of each path. No database is touched with the cache off.

    PYTHONPATH=include .venv/bin/python bench/judge_gateway_bench.py [--requests 500]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import httpx
from sqlalchemy import create_engine

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from vlmevals.core.settings import Settings
from vlmevals.pipeline.judge_gateway import JudgeGateway

from tests.doubles.openai_server import serve


def _timed(client: httpx.Client, url: str, n: int) -> list[float]:
    out = []
    for i in range(n):
        body = {"model": "gpt-4o-mini-2024-07-18", "messages": [{"role": "user", "content": f"question {i}"}]}
        t0 = time.perf_counter()
        r = client.post(f"{url}/chat/completions", json=body)
        out.append((time.perf_counter() - t0) * 1000)
        assert r.status_code == 200, r.text
    return out


def _pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--requests", type=int, default=500)
    n = p.parse_args().requests
    with serve(mode="fixed", text="A") as judge:
        settings = Settings.model_validate({"EVALS_JUDGE_BASE_URL": judge.base_url, "EVALS_JUDGE_CACHE": "off"})
        engine = create_engine("postgresql+psycopg://unused@127.0.0.1:1/unused")  # never connected: cache off
        with JudgeGateway(engine, settings, upstream=judge.base_url, max_concurrency=4) as gw, httpx.Client() as c:
            _timed(c, judge.base_url, 20), _timed(c, gw.base_url, 20)  # warm both paths
            direct = _timed(c, judge.base_url, n)
            via = _timed(c, gw.base_url, n)
            block = gw.block()
    for name, v in (("direct", direct), ("gateway", via)):
        print(f"{name:8s} p50 {_pct(v, 50):6.2f} ms  p95 {_pct(v, 95):6.2f} ms")
    print(f"added    p50 {_pct(via, 50) - _pct(direct, 50):6.2f} ms  p95 {_pct(via, 95) - _pct(direct, 95):6.2f} ms")
    print(f"gateway's own time (recorded in judge_usage): {block['gateway_overhead_ms']}")


if __name__ == "__main__":
    main()
