"""Latency of the leaderboard (and run listing) of the evals API; prints JSON figures.

Two modes:
  # over HTTP, against a running stack (e.g. the demo data after `vlmevals up` and a demo run)
  python bench/leaderboard_latency.py http --api-url http://127.0.0.1:8080 --task demo-shapes-mcq -n 200

  # the queries alone on synthetic data: N runs over M models of one task, in a database of their own
  python bench/leaderboard_latency.py synthetic --server-url postgresql+psycopg://evals@127.0.0.1:55432/postgres \
      --runs 100000 --models 50 -n 200
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from collections.abc import Callable
from typing import Any


def _stats(samples_s: list[float]) -> dict[str, float]:
    ms = sorted(s * 1000 for s in samples_s)
    return {
        "p50_ms": round(statistics.median(ms), 2),
        "p95_ms": round(ms[int(0.95 * (len(ms) - 1))], 2),
        "max_ms": round(ms[-1], 2),
        "n": len(ms),
    }


def _time(fn: Callable[[], Any], n: int, warmup: int = 5) -> dict[str, float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return _stats(out)


def http_mode(args: argparse.Namespace) -> dict[str, Any]:
    import httpx

    tok = httpx.post(
        f"{args.api_url}/auth/token", json={"username": args.user, "password": args.password}, timeout=30
    ).json()["access_token"]
    c = httpx.Client(base_url=args.api_url, headers={"Authorization": f"Bearer {tok}"}, timeout=30)
    path = f"/api/evals/tasks/{args.task}/leaderboard"
    rows = c.get(path).json()["count"]

    def get(p: str) -> Callable[[], None]:
        def _go() -> None:
            r = c.get(p)
            r.raise_for_status()

        return _go

    return {
        "mode": "http",
        "api_url": args.api_url,
        "task": args.task,
        "leaderboard_rows": rows,
        "leaderboard_best": _time(get(path), args.n),
        "leaderboard_latest": _time(get(path + "?pick=latest"), args.n),
        "runs_page": _time(get(f"/api/evals/tasks/{args.task}/runs?limit=50"), args.n),
    }


def synthetic_mode(args: argparse.Namespace) -> dict[str, Any]:
    import datetime as dt

    import psycopg
    from sqlalchemy import text
    from vlmevals.db.engine import get_engine, session_scope, upgrade
    from vlmevals.db.models import Task
    from vlmevals.results import leaderboard as queries
    from vlmevals.runs.queries import list_runs

    base = args.server_url.rsplit("/", 1)[0]
    db_url = f"{base}/{args.database}"
    plain = lambda u: u.replace("postgresql+psycopg://", "postgresql://")  # noqa: E731
    with psycopg.connect(plain(args.server_url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{args.database}"')
    upgrade(db_url)
    engine = get_engine(db_url)
    rng = random.Random(0)
    t0 = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO tasks (name, display_name, vlmeval_data) VALUES ('bench-task', 'Bench', 'X'),"
                " ('other-task', 'Other', 'Y')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO models (name, display_name, vlmeval_model, params_b) "
                "SELECT 'm' || g, 'Model ' || g, 'M' || g, g FROM generate_series(1, :m) g"
            ),
            {"m": args.models},
        )
        now = dt.datetime.now(dt.UTC)
        statuses = ["completed"] * 8 + ["failed", "cancelled"]
        batch = []
        for i in range(args.runs):
            st = rng.choice(statuses)
            fin = now - dt.timedelta(minutes=args.runs - i)
            batch.append(
                {
                    "t": 1 if i % 10 else 2,
                    "m": rng.randint(1, args.models),
                    "st": st,
                    "pm": rng.random() if st == "completed" else None,
                    "fin": fin,
                    "metrics": json.dumps({"table": {"split=none|Overall": 0.5, "split=none|a": 0.4}}),
                }
            )
        conn.execute(
            text(
                "INSERT INTO eval_runs (task_id, model_id, status, primary_metric, finished_at, created_at,"
                " metrics, triggered_by) VALUES (:t, :m, :st, :pm, :fin, :fin, CAST(:metrics AS jsonb),"
                " 'nightly')"
            ),
            batch,
        )
        conn.execute(text("ANALYZE eval_runs"))
    seeded_s = time.perf_counter() - t0
    with session_scope(engine) as s:
        task = s.query(Task).filter_by(name="bench-task").one()
        s.expunge(task)

    def board(pick: queries.Pick) -> Callable[[], None]:
        def _go() -> None:
            with session_scope(engine) as s:
                t = s.merge(task, load=False)
                queries.leaderboard(s, t, pick)

        return _go

    def runs_page() -> None:
        with session_scope(engine) as s:
            list_runs(s, s.merge(task, load=False), limit=50)

    def history() -> None:
        with session_scope(engine) as s:
            queries.score_history(s, s.merge(task, load=False), per_model=50)

    out = {
        "mode": "synthetic",
        "runs": args.runs,
        "models": args.models,
        "seed_s": round(seeded_s, 1),
        "leaderboard_best": _time(board("best"), args.n),
        "leaderboard_latest": _time(board("latest"), args.n),
        "runs_page": _time(runs_page, args.n),
        "history": _time(history, max(10, args.n // 4)),
    }
    engine.dispose()
    if not args.keep:
        with psycopg.connect(plain(args.server_url), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="mode", required=True)
    h = sub.add_parser("http")
    h.add_argument("--api-url", default="http://127.0.0.1:8080")
    h.add_argument("--user", default="admin")
    h.add_argument("--password", default="admin")
    h.add_argument("--task", default="demo-shapes-mcq")
    h.add_argument("-n", type=int, default=200)
    s = sub.add_parser("synthetic")
    s.add_argument("--server-url", required=True, help="any database URL of the server; a bench DB is created")
    s.add_argument("--database", default="evals_bench")
    s.add_argument("--runs", type=int, default=100_000)
    s.add_argument("--models", type=int, default=50)
    s.add_argument("-n", type=int, default=200)
    s.add_argument("--keep", action="store_true", help="keep the bench database")
    args = ap.parse_args()
    print(json.dumps(http_mode(args) if args.mode == "http" else synthetic_mode(args), indent=2))


if __name__ == "__main__":
    main()
