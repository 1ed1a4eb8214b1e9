"""Backfill speed on a big VLMEvalKit work dir: generates N (model, dataset) results in all three layouts,
then times the first sync, a re-scan with nothing new, and a re-scan after one folder changed.

    .venv/bin/python bench/backfill_bench.py                 # 10,000 results, own throwaway PostgreSQL
    .venv/bin/python bench/backfill_bench.py --models 20 --datasets 50 --database-url postgresql+psycopg://...

Prints one JSON line (seconds, results/s, SQL statements per scan, CPU seconds of the scan: this process, the
reading pool and the PostgreSQL server, the 1-minute load). Metric files are
real-format VLMEvalKit CSVs, and each result has a real per-sample file (`_exact_matching_result.xlsx`, written
with xlsxwriter as VLMEvalKit's `dump` does, `--samples` rows) that backfill ingests into eval_samples, as it
would in a real work dir; prediction files are placeholders (backfill only checks that they exist).
`--profile FILE` writes a cProfile of the first scan. `--include DIR` runs another checkout's code (its
`include/`, e.g. `/work/main/include`) with this script, for before/after figures in one command.

The first scan has two passes (see vlmevals.backfill.importer): `first_scan_runs_s` is when every result is on
the boards (runs and scores committed), `first_scan_s` the whole sync, per-sample files included (a checkout
without the two passes reports only the latter). `--split` runs the passes as two syncs (as after a sync stopped
between them) and reports the wall and CPU seconds of each: the CPU seconds, unlike wall seconds on a shared
machine, do not depend on the load.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_inc = sys.argv.index("--include") + 1 if "--include" in sys.argv else 0
sys.path.insert(0, str(Path(sys.argv[_inc]).resolve()) if _inc else str(ROOT / "include"))


def _cpu_seconds(pg_data: Path | None) -> float:
    """CPU seconds (user + system) so far of this process, its reaped children (the reading pool's workers) and,
    with `pg_data`, the PostgreSQL server started from it (postmaster and its live backends): the work a scan
    costs whatever the machine's load, where wall seconds on a shared machine mostly measure the load."""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime
    if pg_data is None or not (pg_data / "postmaster.pid").exists():
        return total
    master = int((pg_data / "postmaster.pid").read_text().split()[0])
    tick = os.sysconf("SC_CLK_TCK")
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(stat.parent.name)
        if pid == master or int(fields[1]) == master:  # fields[1]: the parent pid
            total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sample_files(samples: int, variants: int = 10) -> list[bytes]:
    """`variants` per-sample files as VLMEvalKit's exact_matching MCQ evaluation writes them (xlsxwriter),
    differing in their hits; generated once and copied (writing 10,000 xlsx files would dominate the set-up)."""
    import io

    import pandas as pd

    out = []
    for v in range(variants):
        buf = io.BytesIO()
        pd.DataFrame(
            {
                "index": range(samples),
                "question": [f"Which shape is item {i}?" for i in range(samples)],
                "A": "circle",
                "B": "square",
                "C": "triangle",
                "D": "star",
                "answer": ["ABCD"[i % 4] for i in range(samples)],
                "category": [("colour", "shape")[i % 2] for i in range(samples)],
                "prediction": [("ABCD"[i % 4] if (i + v) % 3 else "A") for i in range(samples)],
                "hit": [int((i + v) % 3 != 0 or i % 4 == 0) for i in range(samples)],
                "log": [f"Match Log: {'ABCD'[i % 4]}. " for i in range(samples)],
            }
        ).to_excel(buf, index=False, engine="xlsxwriter")
        out.append(buf.getvalue())
    return out


def generate(work: Path, models: int, datasets: int, samples: int = 20) -> int:
    """`models` model folders x `datasets` results; a third each flat, upstream T folder (+ symlinks), legacy."""
    per_sample = sample_files(samples) if samples > 0 else []
    n = 0
    for i in range(models):
        model = f"Model_{i:03d}"
        mdir = work / model
        layout = ("flat", "upstream", "legacy")[i % 3]
        folder = (
            mdir if layout == "flat" else mdir / ("T20260101-020000" if layout == "upstream" else "T20250101_G0123abcd")
        )
        folder.mkdir(parents=True)
        status = {"schema_version": "1.0", "eval_id": "T20260101-020000", "model_name": model, "datasets": {}}
        for j in range(datasets):
            data = f"BENCH_{j:03d}_MCQ"
            score = ((i * 31 + j * 17) % 100) / 100
            (folder / f"{model}_{data}.xlsx").write_bytes(b"placeholder")
            if per_sample:
                result = f"{model}_{data}_exact_matching_result.xlsx"
                (folder / result).write_bytes(per_sample[(i + j) % len(per_sample)])
            (folder / f"{model}_{data}_acc.csv").write_text(
                f'"split","Overall","colour","shape"\n"none","{score}","{score}","{score}"\n'
            )
            status["datasets"][data] = {
                "status": "done",
                "judge_model": "exact_matching",
                "updated_at": "2026-01-01T02:10:00+00:00",
                "metrics": {"split=none|Overall": score},
            }
            if layout == "upstream":
                for f in (f"{model}_{data}.xlsx", f"{model}_{data}_acc.csv", *([result] if per_sample else [])):
                    (mdir / f).symlink_to(f"{folder.name}/{f}")
            n += 1
        if layout != "legacy":
            (folder / "status.json").write_text(json.dumps(status))
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=int, default=100)
    ap.add_argument("--datasets", type=int, default=100)
    ap.add_argument("--database-url", default=None, help="an empty, migrated-or-not database (default: own PG)")
    ap.add_argument("--workers", type=int, default=None, help="metric-file parser processes (default: CPUs)")
    ap.add_argument("--samples", type=int, default=20, help="rows of each per-sample file (0: none)")
    ap.add_argument("--profile", default=None, help="write a cProfile of the first scan to this file")
    ap.add_argument("--split", action="store_true", help="first scan as two syncs, one per pass, timed apart")
    ap.add_argument("--include", default=None, help="the include/ folder whose code to run (default: this one)")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="backfill-bench-"))
    pg = None
    url = args.database_url
    if url is None:
        from vlmevals.devtools.localpg import LocalPostgres

        pg = LocalPostgres(tmp / "pgdata", port=_free_port())
        pg.start()
        pg.ensure_database("bench")
        url = pg.url("bench")
    os.environ["DATABASE_URL"] = url
    try:
        import vlmevals
        from sqlalchemy import event, func, insert, select
        from vlmevals.backfill import SyncReport, sync_outputs
        from vlmevals.db.engine import get_engine, session_scope, upgrade
        from vlmevals.db.models import EvalRun, EvalSample, Model, Task

        upgrade(url)
        engine = get_engine(url)
        with session_scope(engine) as s:
            s.execute(
                insert(Model),
                [
                    {"name": f"model-{i:03d}", "display_name": f"Model {i}", "vlmeval_model": f"Model_{i:03d}"}
                    for i in range(args.models)
                ],
            )
            s.execute(
                insert(Task),
                [
                    {"name": f"bench-{j:03d}", "display_name": f"Bench {j}", "vlmeval_data": f"BENCH_{j:03d}_MCQ"}
                    for j in range(args.datasets)
                ],
            )
        work = tmp / "outputs"
        t = time.perf_counter()
        n = generate(work, args.models, args.datasets, args.samples)
        gen_s = time.perf_counter() - t
        statements = [0]
        event.listen(engine, "before_cursor_execute", lambda *a: statements.__setitem__(0, statements[0] + 1))

        pg_data = tmp / "pgdata" if pg is not None else None
        cpu: list[float] = []

        def counted(**kw: bool) -> tuple[SyncReport, int]:
            before, cpu_before = statements[0], _cpu_seconds(pg_data)
            report = sync_outputs(work, engine=engine, workers=args.workers, **kw)
            cpu.append(_cpu_seconds(pg_data) - cpu_before)
            return report, statements[0] - before

        load_before = os.getloadavg()[0]
        if args.profile:
            import cProfile

            with cProfile.Profile() as prof:
                first, first_sql = counted()
            prof.dump_stats(args.profile)
        elif args.split:  # the passes as two syncs (what a sync interrupted between them does): CPU of each
            runs_pass, first_sql = counted(samples=False)
            first, more_sql = counted()
            first_sql += more_sql
        else:
            first, first_sql = counted()
        split = {}
        if args.split:
            split = {
                "runs_pass_s": round(runs_pass.seconds, 2),
                "runs_pass_cpu_s": round(cpu[0], 2),
                "samples_pass_s": round(first.seconds, 2),
                "samples_pass_cpu_s": round(cpu[1], 2),
            }
            first.created, first.unchanged, first.runs_seconds = (
                runs_pass.created,
                runs_pass.unchanged,
                runs_pass.seconds,
            )
            first.seconds, cpu[:2] = runs_pass.seconds + first.seconds, [cpu[0] + cpu[1]]
        rescan, rescan_sql = counted()
        # one model folder rewritten (a rerun of a flat-layout model): only its results are re-read
        changed = work / "Model_000"
        for f in changed.glob("*_acc.csv"):
            st = f.stat()
            os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
        after_change = sync_outputs(work, engine=engine, workers=args.workers)
        with session_scope(engine) as s:
            stored = s.scalar(select(func.count()).select_from(EvalRun))
            sample_rows = s.scalar(select(func.count()).select_from(EvalSample))
        out = {
            "results": n,
            "models": args.models,
            "datasets": args.datasets,
            "cpus": os.cpu_count(),
            "generate_tree_s": round(gen_s, 2),
            "code": str(Path(vlmevals.__file__).resolve().parents[1]),
            "first_scan_runs_s": round(getattr(first, "runs_seconds", 0.0), 2) or None,
            "first_scan_s": round(first.seconds, 2),
            "first_scan_results_per_s": round(n / first.seconds),
            "first_scan_cpu_s": round(cpu[0], 2),
            **split,
            "first_scan": first.counts(),
            "first_scan_samples_ingested": first.samples_ingested,
            "first_scan_sample_files_parsed": getattr(first, "sample_files_parsed", None),
            "first_scan_sql_statements": first_sql,
            "rescan_nothing_new_s": round(rescan.seconds, 3),
            "rescan": rescan.counts(),
            "rescan_files_parsed": rescan.files_parsed,
            "rescan_sql_statements": rescan_sql,
            "rescan_cpu_s": round(cpu[1], 2),
            "rescan_one_folder_touched_s": round(after_change.seconds, 3),
            "rescan_one_folder_touched_files_parsed": after_change.files_parsed,
            "runs_stored": stored,
            "sample_rows_stored": sample_rows,
            "samples_per_result": args.samples,
            "load_1m_before": round(load_before, 2),
            "load_1m_at_end": round(os.getloadavg()[0], 2),
        }
        print(json.dumps(out))
    finally:
        if pg is not None:
            from vlmevals.db.engine import get_engine

            get_engine.cache_clear()
            pg.stop(mode="fast")


if __name__ == "__main__":
    main()
