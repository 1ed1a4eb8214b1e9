"""The board and listing endpoints in-process (our FastAPI app under TestClient, no Airflow, no auth) against the
api_scale/overall data (100,000 runs, 1,000 models x 100 tasks, one suite over the 100 tasks), next to the same
figures for the plain SQL: a quick before/after loop for the endpoint code itself, with an optional cProfile.

The HTTP figures of record are api_scale_bench.py and overall_bench.py (real api-server, JWT); this one
isolates our code from the api-server's fixed per-request cost.

Usage: .venv/bin/python bench/api_inprocess.py [--requests 100] [--profile leaderboard|overall|runs]
       [--database-url postgresql+psycopg://...  (an empty database; default: a throw-away PostgreSQL)]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).resolve().parent))
# a bench run with --include DIR (another checkout's code, for before/after figures) keeps that code first
sys.path.insert(
    0,
    str(Path(sys.argv[sys.argv.index("--include") + 1]).resolve())
    if "--include" in sys.argv
    else str(Path(__file__).resolve().parents[1] / "include"),
)
from _common import emit, free_port, log, pct
from api_scale_bench import LEADERBOARD_SQL, PAGE_SQL, POPULATE, UNRANKED_SQL
from overall_bench import CELLS_SQL, SUITE

PATHS = {
    "leaderboard": ("/tasks/scale-task-50/leaderboard", {}),
    "overall": ("/suites/scale/leaderboard", {"limit": 100}),
    "overall_sorted": ("/suites/scale/leaderboard", {"limit": 100, "sort": "scale-task-50", "order": "asc"}),
    "runs": ("/tasks/scale-task-50/runs", {"limit": 50}),
}


def _timed(fn: Callable[[int], object], n: int, warmup: int = 5) -> list[float]:
    for i in range(warmup):
        fn(i)
    out = []
    for i in range(n):
        t = time.perf_counter()
        fn(i)
        out.append((time.perf_counter() - t) * 1000)
    return out


def _populate(url: str) -> tuple[int, list[int]]:
    import psycopg
    from vlmevals.db.engine import upgrade

    upgrade(url)
    plain = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as conn:
        for stmt in filter(str.strip, (POPULATE + SUITE).split(";")):
            conn.execute(stmt, {"tasks": 100, "models": 1000} if "%(" in stmt else None)
        task_id = conn.execute("SELECT id FROM tasks WHERE name = 'scale-task-50'").fetchone()[0]
        suite_tasks = [r[0] for r in conn.execute("SELECT task_id FROM suite_tasks")]
    return task_id, suite_tasks


def _sql_figures(url: str, task_id: int, suite_tasks: list[int], n: int) -> dict[str, list[float]]:
    import psycopg

    conn = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True)

    def board(_: int) -> None:
        rows = conn.execute(LEADERBOARD_SQL, {"task": task_id}).fetchall()
        conn.execute(UNRANKED_SQL, {"task": task_id, "ranked": [r[0] for r in rows]}).fetchall()

    def listing(i: int) -> None:
        conn.execute("SELECT count(*) FROM eval_runs WHERE task_id = %(task)s", {"task": task_id}).fetchone()
        conn.execute(PAGE_SQL, {"task": task_id, "offset": (i * 50) % 1000}).fetchall()

    out = {
        "leaderboard": _timed(board, n),
        "runs": _timed(listing, n),
        "overall": _timed(lambda _: conn.execute(CELLS_SQL, {"tasks": suite_tasks}).fetchall(), max(10, n // 5)),
    }
    conn.close()
    return out


def _client() -> TestClient:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient
    from vlmevals.api import errors
    from vlmevals.api.app import ROUTERS

    app = FastAPI()
    for router in ROUTERS:
        app.include_router(router)
    errors.install(app)
    return TestClient(app, root_path="/api/evals")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=100)
    ap.add_argument("--profile", choices=sorted(PATHS), default=None)
    ap.add_argument("--database-url", default=None)
    args = ap.parse_args()
    pg = None
    url = args.database_url
    if url is None:
        from vlmevals.devtools.localpg import LocalPostgres

        pg = LocalPostgres(Path(tempfile.mkdtemp(prefix="api-inprocess-")) / "pgdata", port=free_port())
        pg.start()
        pg.ensure_database("bench")
        url = pg.url("bench")
    os.environ["DATABASE_URL"] = url
    try:
        t0 = time.monotonic()
        task_id, suite_tasks = _populate(url)
        log(f"populated in {time.monotonic() - t0:.0f} s")
        c = _client()

        def get(name: str) -> Callable[[int], object]:
            path, params = PATHS[name]

            def go(i: int) -> object:
                p = {**params, "offset": (i * 100) % 1000} if name != "leaderboard" else params
                r = c.get(path, params=p)
                r.raise_for_status()
                return r

            return go

        if args.profile:
            prof = cProfile.Profile()
            go = get(args.profile)
            go(0)
            prof.enable()
            for i in range(20):
                go(i)
            prof.disable()
            pstats.Stats(prof, stream=sys.stderr).sort_stats("cumulative").print_stats(45)
        n = args.requests
        api = {name: _timed(get(name), n if not name.startswith("overall") else max(10, n // 2)) for name in PATHS}
        sql = _sql_figures(url, task_id, suite_tasks, n)

        def fig(ms: list[float]) -> dict[str, float]:
            return {"p50_ms": round(pct(ms, 50), 2), "p95_ms": round(pct(ms, 95), 2)}

        out: dict[str, object] = {"bench": "api_inprocess", "requests": n}
        for name, ms in api.items():
            base = sql[name.removesuffix("_sorted")]
            out[name] = {**fig(ms), "sql": fig(base), "ratio_p50": round(pct(ms, 50) / pct(base, 50), 2)}
        emit(out)
    finally:
        if pg is not None:
            from vlmevals.db.engine import get_engine

            get_engine.cache_clear()
            pg.stop(mode="fast")


if __name__ == "__main__":
    main()
