"""The overall board of a suite at scale: 1,000 models x 100 tasks (100,000 completed runs, one cell each), one
suite over all 100 tasks, served by the real api-server (plugin mounted, Bearer JWT) of a throw-away stack.

Figures: p50/p95 over `--requests` sequential requests (after warm-up) of the default page of 100 rows (by rank),
of a page sorted by one task's column, of the CSV export of a page, and of the board's SQL query for the cells
in plain psycopg (ratio = API p50 / SQL p50).

Usage: .venv/bin/python bench/overall_bench.py [--models 1000] [--tasks 100] [--requests 50]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import bench_stack, client, emit, log, pct
from api_scale_bench import POPULATE

SUITE = """
INSERT INTO suites (name, display_name, description) VALUES ('scale', 'Scale suite', '');
INSERT INTO suite_tasks (suite_id, task_id, position, weight)
SELECT (SELECT id FROM suites WHERE name = 'scale'), t.id, row_number() OVER (ORDER BY t.id) - 1, 1.0
FROM tasks t WHERE t.name LIKE 'scale-task-%%';
"""
CELLS_SQL = """
SELECT DISTINCT ON (r.task_id, r.model_id) r.model_id, r.task_id, r.id, r.primary_metric
FROM eval_runs r JOIN tasks t ON t.id = r.task_id
WHERE r.task_id = ANY(%(tasks)s) AND r.status = 'completed' AND r.primary_metric IS NOT NULL
ORDER BY r.task_id, r.model_id, CASE WHEN t.higher_is_better THEN -r.primary_metric ELSE r.primary_metric END,
         r.finished_at DESC, r.id DESC
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", type=int, default=1000)
    ap.add_argument("--tasks", type=int, default=100)
    ap.add_argument("--requests", type=int, default=50)
    args = ap.parse_args()
    with bench_stack(gpu_slots=1) as stack:
        import psycopg

        url = stack.database_url.replace("postgresql+psycopg://", "postgresql://")
        t0 = time.monotonic()
        with psycopg.connect(url, autocommit=True) as conn:
            for stmt in filter(str.strip, (POPULATE + SUITE).split(";")):
                conn.execute(stmt, {"tasks": args.tasks, "models": args.models} if "%(" in stmt else None)
            runs = conn.execute("SELECT count(*) FROM eval_runs").fetchone()[0]
            task_ids = [r[0] for r in conn.execute("SELECT task_id FROM suite_tasks")]
        log(f"{runs} runs stored in {time.monotonic() - t0:.0f} s")
        c = client(stack, "viewer")
        path = "/api/evals/suites/scale/leaderboard"

        def api(params: dict) -> list[float]:
            for _ in range(3):  # warm-up: connection pool, plan cache, auth manager
                c.get(path, params=params).raise_for_status()
            out = []
            for i in range(args.requests):
                t = time.perf_counter()
                r = c.get(path, params={**params, "offset": (i * 100) % args.models})
                out.append((time.perf_counter() - t) * 1000)
                r.raise_for_status()
            return out

        first = c.get(path, params={"limit": 100}).json()
        default = api({"limit": 100})
        by_task = api({"limit": 100, "sort": "scale-task-50", "order": "asc"})
        as_csv = api({"limit": 100, "format": "csv"})
        sql_ms = []
        with psycopg.connect(url, autocommit=True) as conn:
            for i in range(args.requests + 3):
                t = time.perf_counter()
                conn.execute(CELLS_SQL, {"tasks": task_ids}).fetchall()
                if i >= 3:
                    sql_ms.append((time.perf_counter() - t) * 1000)

    def fig(ms: list[float]) -> dict:
        return {"p50_ms": round(pct(ms, 50), 1), "p95_ms": round(pct(ms, 95), 1)}

    emit(
        {
            "bench": "overall_board",
            "runs": runs,
            "models": args.models,
            "tasks": args.tasks,
            "ranked_models": first["count"],
            "page_rows": len(first["data"]),
            "requests": args.requests,
            "default_page100": fig(default),
            "sorted_by_task_page100": fig(by_task),
            "csv_page100": fig(as_csv),
            "cells_sql": fig(sql_ms),
            "ratio_api_over_sql_p50": round(pct(default, 50) / pct(sql_ms, 50), 2),
        }
    )


if __name__ == "__main__":
    main()
