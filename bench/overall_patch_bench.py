"""The overall board after one of its tasks changed: patched (the changed task's entries read again, averages and
ranks recomputed: api.board_cache via results.overall.patched_board) against built from scratch (every cell read
and built: what the cache did on any change before), alternately in one process on the same data, so both see the
same machine load.

N stored runs (board_churn_bench's generator: 1,000 models x 100 tasks x `--per-pair`, board entries built), then
`--changes` times: one run completed on a random task through the life cycle (`lifecycle.create_run`,
`mark_running`, `mark_completed`: it ranks first on its task), then the suite's board (1 suite over every task)
patched and built, in alternating order; the two must agree (ranks, averages, cells). Reports wall and CPU
milliseconds (p50/p95/max) of each and the 1-minute load.

Usage: .venv/bin/python bench/overall_patch_bench.py [--models 1000] [--tasks 100] [--per-pair 1] [--changes 40]
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "include"))
from _common import emit, free_port, log, pct
from board_churn_bench import populate


def _flat(board: Any) -> list[tuple[Any, ...]]:
    return [
        (
            r.model.id,
            r.rank,
            r.average,
            r.mean_rank,
            r.covered,
            *sorted((t, c.run_id, c.value, c.task_rank) for t, c in r.cells.items()),
        )
        for r in board.ranked + board.partial
    ]


def _fig(ms: list[float]) -> dict[str, float]:
    return {"p50_ms": round(pct(ms, 50), 1), "p95_ms": round(pct(ms, 95), 1), "max_ms": round(max(ms), 1)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", type=int, default=1000)
    ap.add_argument("--tasks", type=int, default=100)
    ap.add_argument("--per-pair", type=int, default=1)
    ap.add_argument("--changes", type=int, default=40)
    args = ap.parse_args()
    from sqlalchemy import select
    from vlmevals.api import board_cache
    from vlmevals.db.engine import get_engine, session_scope
    from vlmevals.db.models import Suite
    from vlmevals.devtools.localpg import LocalPostgres
    from vlmevals.results.overall import overall_board
    from vlmevals.runs import lifecycle

    pg = LocalPostgres(Path(tempfile.mkdtemp(prefix="overall-patch-")) / "pgdata", port=free_port())
    pg.start()
    try:
        pg.ensure_database("bench")
        url = pg.url("bench")
        os.environ["DATABASE_URL"] = url
        os.environ["EVALS_BOARD_REFRESH_S"] = "0"  # every board patched (the cost measured), none served as it was
        n = populate(url, args.models, args.tasks, args.per_pair)
        engine, rng = get_engine(url), random.Random(25)
        load_before = os.getloadavg()[0]
        with session_scope(engine) as s:
            board_cache.cached_board(s, s.scalars(select(Suite).where(Suite.name == "scale")).one())  # the first build
        wall: dict[str, list[float]] = {"patched": [], "built": []}
        cpu: dict[str, list[float]] = {"patched": [], "built": []}
        differ = 0
        for i in range(args.changes):
            task, model = f"scale-task-{rng.randint(1, args.tasks)}", f"scale-model-{rng.randint(1, args.models)}"
            with session_scope(engine) as s:
                run_id = lifecycle.create_run(s, task, model, triggered_by="nightly", forced=True).id
            with session_scope(engine) as s:
                lifecycle.mark_running(s, run_id, 1)
            with session_scope(engine) as s:
                lifecycle.mark_completed(s, run_id, primary_metric=2.0 + i * 1e-6, metrics={})
            boards: dict[str, Any] = {}
            for kind in ("patched", "built") if i % 2 else ("built", "patched"):
                with session_scope(engine) as s:
                    suite = s.scalars(select(Suite).where(Suite.name == "scale")).one()
                    _ = [m.task for m in suite.members]
                    gc.collect()  # neither pays for the other's garbage (the cache's own collection is timed)
                    t, c = time.perf_counter(), time.process_time()
                    got = board_cache.cached_board(s, suite) if kind == "patched" else overall_board(s, suite)
                    wall[kind].append((time.perf_counter() - t) * 1000)
                    cpu[kind].append((time.process_time() - c) * 1000)
                    boards[kind] = _flat(got)
            differ += boards["patched"] != boards["built"]
            del got
            boards.clear()  # nothing of this round alive in the next one's collections
            log(f"change {i + 1}: patched {wall['patched'][-1]:.0f} ms, built {wall['built'][-1]:.0f} ms")
        emit(
            {
                "bench": "overall_patch",
                "runs": n,
                "models": args.models,
                "tasks": args.tasks,
                "changes": args.changes,
                "patched_wall": _fig(wall["patched"]),
                "built_wall": _fig(wall["built"]),
                "patched_cpu": _fig(cpu["patched"]),
                "built_cpu": _fig(cpu["built"]),
                "boards_differing": differ,
                "load_1m_before": round(load_before, 2),
                "load_1m_at_end": round(os.getloadavg()[0], 2),
            }
        )
    finally:
        get_engine.cache_clear()
        pg.stop(mode="fast")


if __name__ == "__main__":
    main()
