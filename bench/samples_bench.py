"""Per-sample storage figures: ingest speed, bytes per run in PostgreSQL vs a Parquet file, page and comparison
latency, for a benchmark of N samples (default 10,000, the largest VLMEvalKit image benchmarks' size).

Usage: .venv/bin/python bench/samples_bench.py [--samples 10000] [--runs 4]
Starts a throw-away PostgreSQL (pgserver binaries) unless BENCH_DATABASE_URL names one; prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import tempfile
import time
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def synthetic(n: int, seed: int, accuracy: float) -> list:
    """MCQ-like records with realistic text sizes (question ~120 chars, 4 options, short prediction, judge log)."""
    from vlmevals.results.samples.parse import SampleRecord

    rng = random.Random(seed)
    words = ["what", "which", "colour", "shape", "chart", "value", "axis", "shown", "image", "bar", "line"]
    out = []
    for i in range(n):
        q = " ".join(rng.choice(words) for _ in range(20)) + "?"
        extra = {k: " ".join(rng.choice(words) for _ in range(3)) for k in "ABCD"}
        extra["log"] = f"Match Log: {rng.choice('ABCD')}. "
        hit = 1.0 if rng.random() < accuracy else 0.0
        failed = rng.random() < 0.005
        pred = "Failed to obtain answer via API." if failed else rng.choice("ABCD")
        out.append(
            SampleRecord(
                str(i),
                rng.choice(["perception", "reasoning", "ocr", "chart"]),
                q,
                rng.choice("ABCD"),
                pred,
                hit,
                failed,
                extra,
            )
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=4)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="samples-bench-"))
    pg = None
    url = os.environ.get("BENCH_DATABASE_URL")
    if not url:
        from vlmevals.devtools.localpg import LocalPostgres

        pg = LocalPostgres(tmp / "pgdata", port=_free_port())
        pg.start()
        pg.ensure_database("bench")
        url = pg.url("bench")
    os.environ["DATABASE_URL"] = url
    try:
        print(json.dumps(run(url, args.samples, args.runs, tmp), indent=2))
    finally:
        if pg is not None:
            pg.stop(mode="fast")


def run(url: str, n: int, n_runs: int, tmp: Path) -> dict[str, object]:
    import pandas as pd
    from sqlalchemy import func, text
    from vlmevals.db.engine import get_engine, session_scope, upgrade
    from vlmevals.db.models import EvalRun, Model, Task
    from vlmevals.results import compare
    from vlmevals.results.samples import store as samples
    from vlmevals.results.samples.summary import summarise

    upgrade(url)
    engine = get_engine(url)
    with session_scope(engine) as s:
        task = Task(name="bench", display_name="bench", vlmeval_data="BENCH")
        model = Model(name="m", display_name="m", vlmeval_model="M")
        s.add_all([task, model])
        s.flush()
        ids = []
        for _ in range(n_runs):
            r = EvalRun(task=task, model=model, status="completed", triggered_by="cli", finished_at=func.now())
            s.add(r)
            s.flush()
            ids.append(r.id)
    ingest_s = []
    for k, rid in enumerate(ids):
        recs = synthetic(n, seed=k, accuracy=0.6 + 0.02 * k)
        t = time.perf_counter()
        with session_scope(engine) as s:
            samples.store(s, rid, recs)
        ingest_s.append(time.perf_counter() - t)
    t = time.perf_counter()
    with session_scope(engine) as s:
        samples.store(s, ids[0], synthetic(n, seed=0, accuracy=0.6))  # idempotent re-ingest
    reingest = time.perf_counter() - t
    recs0 = synthetic(n, seed=0, accuracy=0.6)
    summary_t = time.perf_counter()
    summarise(recs0, "x")
    summary_s = time.perf_counter() - summary_t
    with engine.connect() as conn:
        table_bytes = conn.execute(text("SELECT pg_total_relation_size('eval_samples')")).scalar_one()
    recs = synthetic(n, seed=0, accuracy=0.6)
    df = pd.DataFrame([r.__dict__ | {"extra": json.dumps(r.extra)} for r in recs])
    pq = tmp / "run.parquet"
    df.to_parquet(pq, compression="zstd")
    with session_scope(engine) as s:
        t = time.perf_counter()
        rows, count = samples.list_samples(s, ids[0], outcome="wrong", category="ocr", offset=200, limit=50)
        page_ms = (time.perf_counter() - t) * 1000
        t = time.perf_counter()
        cmp = compare.compare_runs(s, ids[0], ids[1])
        compare_s = time.perf_counter() - t
    return {
        "samples_per_run": n,
        "runs": n_runs,
        "ingest_s_per_run": [round(x, 3) for x in ingest_s],
        "reingest_s": round(reingest, 3),
        "ingest_rows_per_s": round(n / min(ingest_s)),
        "summary_with_ci_s": round(summary_s, 3),
        "postgres_bytes_per_run": table_bytes // n_runs,
        "postgres_bytes_per_sample": table_bytes // (n_runs * n),
        "parquet_zstd_bytes_per_run": pq.stat().st_size,
        "projected_postgres_gb_for_1000_runs": round(table_bytes / n_runs * 1000 / 1e9, 2),
        "page_query_ms": round(page_ms, 1),
        "page_rows": len(rows),
        "page_filtered_count": count,
        "compare_two_runs_s": round(compare_s, 3),
        "compare_paired": cmp.samples.paired,
    }


if __name__ == "__main__":
    main()
