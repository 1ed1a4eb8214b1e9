"""Leaderboard and run-listing API at scale: 100,000 eval runs (1,000 models x 100 tasks, each with a metric table),
served by the real api-server (plugin mounted, Bearer JWT) of a throw-away stack.

For each endpoint: p50/p95 over `--requests` sequential HTTP requests (after warm-up), and the same query's time
in plain SQL (psycopg, the statements the endpoint runs, rows fetched); ratio = API p50 / SQL p50.
Targets: p95 <= 25 ms and ratio <= 3.

Usage: .venv/bin/python bench/api_scale_bench.py [--models 1000] [--tasks 100] [--requests 200]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import bench_stack, client, emit, log, pct

POPULATE = """
INSERT INTO tasks (name, display_name, vlmeval_data, primary_metric_suffix, primary_metric_key, higher_is_better,
                   metric_scale, regression_tolerance, description)
SELECT 'scale-task-' || t, 'Scale task ' || t, 'SCALE_' || t, '_acc.csv', 'Overall', true, 1.0, 0.01, ''
FROM generate_series(1, %(tasks)s) t;
INSERT INTO models (name, display_name, vlmeval_model, model_type, gpus, launch_mode, description)
SELECT 'scale-model-' || m, 'Scale model ' || m, 'ScaleModel' || m, 'vlm', 1, 'single', ''
FROM generate_series(1, %(models)s) m;
INSERT INTO eval_runs (task_id, model_id, status, triggered_by, created_at, started_at, finished_at, primary_metric,
                       metrics, progress_done, progress_total, samples_total, samples_failed, ci_low, ci_high)
SELECT t.id, m.id, 'completed', 'nightly', now() - interval '1 day', now() - interval '1 day', now(), s.score,
       jsonb_build_object('table', jsonb_build_object('split=none|Overall', s.score, 'split=none|colour', s.score,
                                                      'split=none|shape', s.score), 'file', 'x_acc.csv'),
       100, 100, 100, 0, s.score - 0.05, s.score + 0.05
FROM tasks t CROSS JOIN models m CROSS JOIN LATERAL (SELECT random() AS score) s
WHERE t.name LIKE 'scale-task-%%' AND m.name LIKE 'scale-model-%%';
ANALYZE;
"""

LEADERBOARD_SQL = """
SELECT m.*, r.* FROM models m
JOIN LATERAL (SELECT c.id FROM eval_runs c WHERE c.task_id = %(task)s AND c.model_id = m.id
              AND c.status = 'completed' AND c.primary_metric IS NOT NULL
              ORDER BY c.primary_metric DESC, c.finished_at DESC, c.id DESC LIMIT 1) chosen ON true
JOIN eval_runs r ON r.id = chosen.id;
"""
UNRANKED_SQL = """
SELECT m.*, last.id, last.status FROM models m
JOIN LATERAL (SELECT l.id, l.status FROM eval_runs l WHERE l.task_id = %(task)s AND l.model_id = m.id
              ORDER BY l.id DESC LIMIT 1) last ON true
WHERE m.id <> ALL(%(ranked)s) ORDER BY m.name;
"""
COUNT_SQL = "SELECT count(*) FROM eval_runs WHERE task_id = %(task)s"
PAGE_SQL = """
SELECT r.*, m.*, t.* FROM eval_runs r JOIN models m ON m.id = r.model_id JOIN tasks t ON t.id = r.task_id
WHERE r.task_id = %(task)s ORDER BY r.created_at DESC, r.id DESC LIMIT 50 OFFSET %(offset)s
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", type=int, default=1000)
    ap.add_argument("--tasks", type=int, default=100)
    ap.add_argument("--requests", type=int, default=200)
    args = ap.parse_args()
    with bench_stack(gpu_slots=1) as stack:
        import psycopg

        url = stack.database_url.replace("postgresql+psycopg://", "postgresql://")
        t0 = time.monotonic()
        with psycopg.connect(url, autocommit=True) as conn:
            for stmt in filter(str.strip, POPULATE.split(";")):
                conn.execute(stmt, {"tasks": args.tasks, "models": args.models} if "%(" in stmt else None)
            runs = conn.execute("SELECT count(*) FROM eval_runs").fetchone()[0]
            task_id = conn.execute("SELECT id FROM tasks WHERE name = 'scale-task-50'").fetchone()[0]
        log(f"{runs} runs stored in {time.monotonic() - t0:.0f} s")
        c = client(stack, "viewer")

        def api(path: str, params: dict | None = None) -> list[float]:
            for _ in range(5):  # warm-up: connection pool, JIT of the plan cache, auth manager
                c.get(path, params=params).raise_for_status()
            out = []
            for i in range(args.requests):
                p = dict(params or {})
                if "offset" in p:
                    p["offset"] = (i * 50) % 1000
                t = time.perf_counter()
                r = c.get(path, params=p)
                out.append((time.perf_counter() - t) * 1000)
                r.raise_for_status()
            return out

        board = api("/api/evals/tasks/scale-task-50/leaderboard")
        n_rows = c.get("/api/evals/tasks/scale-task-50/leaderboard").json()["count"]
        listing = api("/api/evals/tasks/scale-task-50/runs", {"limit": 50, "offset": 0})

        def sql(kind: str) -> list[float]:
            out = []
            with psycopg.connect(url, autocommit=True) as conn:
                for i in range(args.requests + 5):
                    t = time.perf_counter()
                    if kind == "leaderboard":
                        rows = conn.execute(LEADERBOARD_SQL, {"task": task_id}).fetchall()
                        conn.execute(UNRANKED_SQL, {"task": task_id, "ranked": [r[0] for r in rows]}).fetchall()
                    else:
                        conn.execute(COUNT_SQL, {"task": task_id}).fetchone()
                        conn.execute(PAGE_SQL, {"task": task_id, "offset": (i * 50) % 1000}).fetchall()
                    if i >= 5:
                        out.append((time.perf_counter() - t) * 1000)
            return out

        board_sql, listing_sql = sql("leaderboard"), sql("listing")

    def fig(api_ms: list[float], sql_ms: list[float]) -> dict:
        return {
            "p50_ms": round(pct(api_ms, 50), 2),
            "p95_ms": round(pct(api_ms, 95), 2),
            "sql_p50_ms": round(pct(sql_ms, 50), 2),
            "sql_p95_ms": round(pct(sql_ms, 95), 2),
            "ratio_api_over_sql_p50": round(pct(api_ms, 50) / pct(sql_ms, 50), 2),
        }

    emit(
        {
            "bench": "api_scale",
            "runs": runs,
            "models": args.models,
            "tasks": args.tasks,
            "leaderboard_rows": n_rows,
            "requests": args.requests,
            "leaderboard": fig(board, board_sql),
            "run_listing_page50": fig(listing, listing_sql),
            "targets": {"p95_ms": 25, "ratio": 3},
        }
    )


if __name__ == "__main__":
    main()
