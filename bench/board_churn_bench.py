"""Boards under a nightly: N stored runs (api_scale_bench's generator, repeated `--per-pair` times per task x model
with older dates), a writer completing runs through the real completion path (`lifecycle.create_run`, then
`mark_completed` with the regression check in the same commit, as `pipeline.ingest.store_result` does) at each of
`--rates` runs/s, and three readers, each its own process with its own page cache (as the api-server's workers):
the task leaderboard (page of 100, of the task the writer completed a run on last), the overall board (1 suite
over every task, page of 100) and the run listing (page of 50 of a task). Before the writer starts: the cold task
leaderboard (the cache emptied before each request, a different task each time).

Reports read p50/p95/max per reader and phase, and the lag from a completion's commit to the leaderboard reader
seeing the run on the page (each completed run scores above every stored one, so it ranks first on its task).
Readers run our FastAPI app in-process (TestClient, no Airflow, no auth: api_inprocess.py's client) against a
throw-away PostgreSQL.

Usage: .venv/bin/python bench/board_churn_bench.py [--models 1000] [--tasks 100] [--per-pair 1]
       [--rates 1,10] [--seconds 30] [--include DIR]   (1,000,000 runs: --per-pair 10)
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing as mp
import os
import queue
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
# --include DIR: another checkout's code (its include/) under this script, for before/after figures
sys.path.insert(
    0,
    str(Path(sys.argv[sys.argv.index("--include") + 1]).resolve())
    if "--include" in sys.argv
    else str(Path(__file__).resolve().parents[1] / "include"),
)
from _common import emit, free_port, log, pct
from api_scale_bench import POPULATE
from overall_bench import SUITE

REPEAT = """
INSERT INTO eval_runs (task_id, model_id, status, triggered_by, created_at, started_at, finished_at, primary_metric,
                       metrics, progress_done, progress_total, samples_total, samples_failed, ci_low, ci_high)
SELECT r.task_id, r.model_id, r.status, r.triggered_by, r.created_at - k * interval '1 day',
       r.started_at - k * interval '1 day', r.finished_at - k * interval '1 day', random(), r.metrics,
       r.progress_done, r.progress_total, r.samples_total, r.samples_failed, r.ci_low, r.ci_high
FROM eval_runs r CROSS JOIN generate_series(1, %(more)s) k
"""
PHASE_READERS = ("leaderboard", "overall", "runs")


def populate(url: str, models: int, tasks: int, per_pair: int) -> int:
    """The runs (1 per pair, then `per_pair - 1` older copies with new scores) and the board entries built from
    them as the migration does; returns the number of runs."""
    import psycopg
    from vlmevals.db.engine import get_engine, upgrade

    try:
        from vlmevals.runs.board_entries import rebuild
    except ImportError:  # a checkout before the board entries (PYTHONPATH=<main>/include): the "before" figures
        rebuild = None
    upgrade(url)
    plain = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as conn:
        for stmt in filter(str.strip, (POPULATE + SUITE).split(";")):  # api_scale_bench's generator
            conn.execute(stmt, {"tasks": tasks, "models": models} if "%(" in stmt else None)  # type: ignore[arg-type]
        if per_pair > 1:
            conn.execute(REPEAT, {"more": per_pair - 1})  # type: ignore[arg-type]
        n = conn.execute("SELECT count(*) FROM eval_runs").fetchone()[0]  # type: ignore[index]
    t0 = time.monotonic()
    if rebuild is not None:
        with get_engine(url).begin() as c:
            entries = rebuild(c)
        log(f"board entries rebuilt: {entries} in {time.monotonic() - t0:.1f} s")
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    return int(n)


def _client() -> Any:
    from api_inprocess import _client as make

    return make()


def writer(url: str, rate: float, seconds: float, tasks: int, models: int, done: Any, stats: Any) -> None:
    """Completes runs at `rate`/s through the life cycle, each with its regression check in the same commit."""
    from vlmevals.db.engine import get_engine, session_scope
    from vlmevals.results.regression import check_in_session
    from vlmevals.runs import lifecycle

    engine, rng = get_engine(url), random.Random(7)
    start, i = time.monotonic(), 0
    while time.monotonic() - start < seconds:
        wait = start + i / rate - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        task, model = f"scale-task-{rng.randint(1, tasks)}", f"scale-model-{rng.randint(1, models)}"
        with session_scope(engine) as s:
            run_id = lifecycle.create_run(s, task, model, triggered_by="nightly", forced=True).id
        score = 2.0 + i * 1e-6  # above every stored score: first on its task's board
        table = {"split=none|Overall": score}
        with session_scope(engine) as s:
            lifecycle.mark_running(s, run_id, 1)
        with session_scope(engine) as s:
            lifecycle.mark_completed(
                s,
                run_id,
                primary_metric=score,
                metrics={"table": table},
                then=lambda t, rid=run_id: check_in_session(t, rid),
            )
        done.put((run_id, task, time.time()))
        i += 1
    done.put(None)
    stats.put(i / (time.monotonic() - start))


def reader(url: str, kind: str, seconds: float, tasks: int, done: Any, out: Any) -> None:
    """Polls one endpoint for `seconds`; the leaderboard reader follows the writer's completions (lag)."""
    os.environ["DATABASE_URL"] = url
    logging.disable(logging.INFO)  # no line per request
    c, rng = _client(), random.Random(kind)
    ms: list[float] = []
    lags: list[float] = []
    pending: list[tuple[int, str, float]] = []
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        if kind == "leaderboard":
            while True:
                try:
                    got = done.get_nowait()
                except queue.Empty:
                    break
                if got is not None:
                    pending.append(got)
            task = pending[0][1] if pending else f"scale-task-{rng.randint(1, tasks)}"
            path, params = f"/tasks/{task}/leaderboard", {"limit": 100}
        elif kind == "overall":
            path, params = "/suites/scale/leaderboard", {"limit": 100, "offset": rng.randrange(0, 900, 100)}
        else:
            path, params = f"/tasks/scale-task-{rng.randint(1, tasks)}/runs", {"limit": 50}
        t = time.perf_counter()
        r = c.get(path, params=params)
        r.raise_for_status()
        ms.append((time.perf_counter() - t) * 1000)
        if kind == "leaderboard" and pending:
            seen = {row["run_id"] for row in r.json()["data"]}
            now = time.time()
            lags += [(now - at) * 1000 for rid, tk, at in pending if tk == task and rid in seen]
            pending = [p for p in pending if not (p[1] == task and p[0] in seen)]
    out.put((kind, ms, lags, len(pending)))


def cold_leaderboard(url: str, tasks: int, n: int) -> list[float]:
    """The task leaderboard with an empty page cache, a different task each request."""
    from vlmevals.api import board_cache

    os.environ["DATABASE_URL"] = url
    logging.disable(logging.INFO)
    c = _client()
    c.get("/tasks/scale-task-1/leaderboard").raise_for_status()
    ms = []
    for i in range(n):
        board_cache.clear()
        t = time.perf_counter()
        c.get(f"/tasks/scale-task-{1 + i % tasks}/leaderboard", params={"limit": 100}).raise_for_status()
        ms.append((time.perf_counter() - t) * 1000)
    return ms


def _fig(ms: list[float]) -> dict[str, float]:
    if not ms:
        return {"n": 0}
    return {"n": len(ms), "p50_ms": round(pct(ms, 50), 1), "p95_ms": round(pct(ms, 95), 1), "max_ms": round(max(ms), 1)}


def phase(url: str, rate: float, seconds: float, tasks: int, models: int) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    done, out, stats = ctx.Queue(), ctx.Queue(), ctx.Queue()
    procs = [ctx.Process(target=reader, args=(url, k, seconds, tasks, done, out)) for k in PHASE_READERS]
    for p in procs:
        p.start()
    time.sleep(8)  # the readers import and warm up before the writer starts
    w = ctx.Process(target=writer, args=(url, rate, seconds - 10, tasks, models, done, stats))
    w.start()
    got = {}
    for _ in procs:
        kind, ms, lags, unseen = out.get()
        got[kind] = {**_fig(ms), **({"lag": _fig(lags), "unseen_at_end": unseen} if kind == "leaderboard" else {})}
    achieved = stats.get()
    for p in [*procs, w]:
        p.join()
    return {"writer_per_s": rate, "writer_achieved_per_s": round(achieved, 2), **got}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", type=int, default=1000)
    ap.add_argument("--tasks", type=int, default=100)
    ap.add_argument("--per-pair", type=int, default=1)
    ap.add_argument("--rates", default="1,10")
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--cold", type=int, default=50)
    ap.add_argument("--include", default=None, help="the include/ folder whose code to run (default: this one)")
    args = ap.parse_args()
    from vlmevals.devtools.localpg import LocalPostgres

    pg = LocalPostgres(Path(tempfile.mkdtemp(prefix="board-churn-")) / "pgdata", port=free_port())
    pg.start()
    try:
        pg.ensure_database("bench")
        url = pg.url("bench")
        t0 = time.monotonic()
        n = populate(url, args.models, args.tasks, args.per_pair)
        log(f"{n} runs stored in {time.monotonic() - t0:.0f} s")
        figures: dict[str, Any] = {"bench": "board_churn", "runs": n, "models": args.models, "tasks": args.tasks}
        figures["cold_leaderboard"] = _fig(cold_leaderboard(url, args.tasks, args.cold))
        figures["phases"] = [
            phase(url, float(r), args.seconds, args.tasks, args.models) for r in args.rates.split(",") if r
        ]
        emit(figures)
    finally:
        pg.stop(mode="fast")


if __name__ == "__main__":
    main()
