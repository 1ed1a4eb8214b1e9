"""Serve once, evaluate many (issue 22): a suite on one checkpoint, in-process vs one managed server.

Part 1, measured on this machine (CPU), side by side in one run: the demo suite (3 benchmarks, `--questions` rows
each, default 200) on the trained demo model's step-400 checkpoint (devtools/demo/train.py, cached; its catalogue
row `demo-tiny-idefics3-trained` points at it), through the service's own steps without Airflow, as
tests/vlmevals/pipeline/test_serve.py drives them:
  (a) in-process: each run's `inference_step` one after the other (one GPU slot serialises them; each run's
      VLMEvalKit process loads the weights through the DOCLING wrapper);
  (b) served: one managed `transformers serve` (transformers 5.23.0 in its own venv, EVALS_ENGINE_PYTHON_TRANSFORMERS)
      run by `serve_step` in a thread, the 3 runs' `served_inference_step` concurrently against it.
Figures: wall time, model loads (in-process: one per VLMEvalKit run; served: the server row's `loads` and the
"[transformers] Loading " lines of its engine log), pool-slot-seconds (in-process: the inference steps' durations x
the model's slots; served: the server task's lifetime, start to stop, x its slots; the runs hold none), requests in
flight (served: the most connections open to the engine's port, sampled every 20 ms, and the most request slots
claimed at once by the runs; in-process: 1), accuracy of each run (both paths must agree), machine load before/after.

Part 2, a projection for one GPU: a 10-benchmark suite of 1,000 questions each on a 7B model, GPU-seconds in-process
(10 loads + 10,000 answers at concurrency 1) vs served (1 load + 10,000 answers at the service's concurrency:
EVALS_SERVE_API_NPROC 32 per run, at most EVALS_SERVE_MAX_CONCURRENCY 64 per server). Load time 60 s. Answers per
second at concurrency c follow a published vLLM sweep (CURVE below: Llama-3.1-8B-Instruct, one H100, vLLM 0.21.0,
output tokens/s at concurrency 1, 4, 16, 64), divided by `--answer-tokens` (tokens per answer; the ratio barely
depends on it, so it is printed for 1, 16 and 128). COMPUTED: a small event simulation of the runs' claims on the
server (a run claims min(32, 64 - held) slots, waits while none is free, re-polls every EVALS_ENDPOINT_POLL_S; the
slots it holds share the curve's rate) gives the served time; in-process is 10 x (load + 1,000 / rate(1)).
MEASURED (validation): the same simulation checked against the real pipeline at a time scale: the stand-in engine
(tests/doubles/engine_standin.py, `--load-seconds 60/K --throughput-curve` with every rate x K) serves
`--val-benchmarks` x `--val-questions` through queue_step / serve_step / served_inference_step and real VLMEvalKit;
the measured server lifetime is compared with the simulation of the same scaled workload (which then includes the
per-run VLMEvalKit start-up, a fixed cost that time-scaling does not shrink; measured from the run).

Usage: PYTHONPATH=include .venv/bin/python bench/serving_bench.py [--questions 200] [--time-scale 10]
       [--val-benchmarks 10] [--val-questions 1000] [--engine-args ARGS] [--skip-cpu] [--skip-validation] [--json]
Starts a throw-away PostgreSQL; caches the trained checkpoints in .local/bench-cache/models.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import CACHE, ROOT, free_port, log

# The published curve (output tokens/s of the whole server at each concurrency) for Part 2:
# "Recipe: concurrency sweep", InferenceBench, https://yobitelcomm.github.io/bench/recipes/concurrency-sweep/ :
# meta-llama/Llama-3.1-8B-Instruct, vLLM 0.21.0, fp16, one H100-80GB-HBM3, workload llm.inference.chatbot-short,
# captured 2026-05-16: 122.2 tok/s at concurrency 1, 580.3 at 4, 1,384.2 at 16, 1,312.3 at 64 (it peaks at 16).
CURVE_SOURCE = (
    "https://yobitelcomm.github.io/bench/recipes/concurrency-sweep/ (Llama-3.1-8B-Instruct, vLLM 0.21.0, 1x H100)"
)
CURVE_TOK_S = {1: 122.2, 4: 580.3, 16: 1384.2, 64: 1312.3}
LOAD_S = 60.0
SUITE = ("demo-shapes-mcq", "demo-colors-vqa", "demo-shapes-yorn")
IN_PROCESS_MODEL = "demo-tiny-idefics3-trained"
SERVED_MODEL = "demo-tiny-idefics3-trained-served"
ENGINE_PYTHON = ROOT / ".venv-engines" / "transformers" / "bin" / "python"
MAIN_ENGINE_PYTHON = Path("/work/main/.venv-engines/transformers/bin/python")
STANDIN = ROOT / "tests" / "doubles" / "engine_standin.py"


# ---------------------------------------------------------------------------------------------------- the curve
def curve_rate(points: list[tuple[float, float]], c: float) -> float:
    """Answers/s at concurrency c, log-linear between points, flat past the ends (the stand-in's own rule)."""
    from tests.doubles.engine_standin import curve_rate as standin_rate

    return standin_rate(points, c)


def answers_curve(answer_tokens: float, scale: float = 1.0) -> list[tuple[float, float]]:
    return [(float(c), tok / answer_tokens * scale) for c, tok in sorted(CURVE_TOK_S.items())]


@dataclass
class Workload:
    benchmarks: int
    questions: int
    load_s: float
    nproc: int = 32
    cap: int = 64
    poll_s: float = 5.0  # EVALS_ENDPOINT_POLL_S: a waiting run looks for a free slot this often
    startup_s: float = 0.0  # a granted run's VLMEvalKit start before its first request (slots held, idle)
    tail_s: float = 0.0  # a run's VLMEvalKit scoring/teardown after its last answer (slots held, idle)
    linger_s: float = 0.0  # the server's idle time before it stops (0 for suite and checkpoint runs)


def in_process_s(w: Workload, points: list[tuple[float, float]]) -> float:
    """One GPU slot, runs one after the other: each loads the weights and answers at concurrency 1."""
    return w.benchmarks * (w.load_s + w.startup_s + w.questions / curve_rate(points, 1) + w.tail_s)


def served_s(w: Workload, points: list[tuple[float, float]], dt: float = 0.01) -> dict[str, float]:
    """The server's lifetime: one load, then the runs' claims (`runs.concurrency.claim`) on its slots, the slots
    in flight sharing the curve's rate (processor sharing); stepped every `dt` s of model time."""
    t = w.load_s
    waiting = list(range(w.benchmarks))
    held: dict[int, int] = {}
    left = {i: float(w.questions) for i in waiting}
    starts: dict[int, float] = {}
    ends: dict[int, float] = {}
    next_poll = {i: t for i in waiting}
    busy = 0.0
    while len(ends) < w.benchmarks:
        for i in list(waiting):
            if t >= next_poll[i]:
                granted = min(w.nproc, w.cap - sum(held.values()))
                if granted >= 1:
                    held[i], starts[i] = granted, t
                    waiting.remove(i)
                else:
                    next_poll[i] = t + w.poll_s
        sending = {i: k for i, k in held.items() if t >= starts[i] + w.startup_s and left[i] > 0}
        c = sum(sending.values())
        if c:
            busy += dt
            rate = curve_rate(points, c)
            for i, k in sending.items():
                left[i] -= rate * k / c * dt
                if left[i] <= 0:
                    starts[i] = t + dt  # reused below as the end of answering
        for i in list(held):
            if left[i] <= 0 and t >= starts[i] + w.tail_s:
                ends[i] = t
                del held[i]
        t += dt
    return {"lifetime_s": t + w.linger_s, "answering_s": busy, "last_run_done_s": t}


def projection(answer_tokens: float, benchmarks: int = 10, questions: int = 1000) -> dict[str, Any]:
    points = answers_curve(answer_tokens)
    w = Workload(benchmarks, questions, LOAD_S)
    inproc = in_process_s(w, points)
    served = served_s(w, points, dt=0.05)["lifetime_s"]
    return {
        "answer_tokens": answer_tokens,
        "answers_per_s_c1": round(curve_rate(points, 1), 3),
        "answers_per_s_c64": round(curve_rate(points, 64), 3),
        "in_process_gpu_s": round(inproc),
        "served_gpu_s": round(served),
        "ratio": round(inproc / served, 2),
        "loads_in_process": benchmarks,
        "loads_served": 1,
    }


# ------------------------------------------------------------------------------------------------ environment
def setup_env(tmp: Path) -> Any:
    """A private PostgreSQL and data folders; the settings the service reads, set before it is imported."""
    from vlmevals.devtools.localpg import LocalPostgres

    pg = LocalPostgres(tmp / "pgdata", port=free_port())
    pg.start()
    pg.ensure_database("bench")
    engine_python = os.environ.get("EVALS_ENGINE_PYTHON_TRANSFORMERS") or next(
        (str(p) for p in (ENGINE_PYTHON, MAIN_ENGINE_PYTHON) if p.exists()), ""
    )
    os.environ.update(
        {
            "DATABASE_URL": pg.url("bench"),
            "LMUData": str(tmp / "LMUData"),
            "VLMEVAL_OUTPUTS": str(tmp / "outputs"),
            "EVALS_MODELS_DIR": str(CACHE / "models"),
            "EVALS_ENGINE_PYTHON_TRANSFORMERS": engine_python,
            "EVALS_PROGRESS_INTERVAL_S": "1",
            "NO_PROXY": "127.0.0.1,localhost",
        }
    )
    for k in ("EVALS_GPUS", "CUDA_VISIBLE_DEVICES"):
        os.environ.pop(k, None)
    (tmp / "LMUData").mkdir(parents=True, exist_ok=True)
    from vlmevals.core.settings import get_settings
    from vlmevals.db.engine import get_engine, session_scope, upgrade

    get_settings.cache_clear()
    upgrade(os.environ["DATABASE_URL"])
    engine = get_engine(os.environ["DATABASE_URL"])
    from vlmevals.catalogue.seed import seed

    with session_scope(engine) as s:
        seed(s)
    return pg, engine


def queue(engine: Any, task: str, model: str, settings: Any) -> dict[str, Any]:
    from vlmevals.pipeline.queue import queue_step

    return queue_step(
        engine,
        {"task": task, "model": model},
        dag_id="eval_run",
        dag_run_id=f"bench__{time.time_ns()}",
        run_type="manual",
        user=None,
        settings=settings,
    )


def add_served_model(engine: Any, name: str, like: str, vlmeval_model: str, serve: dict[str, Any]) -> None:
    from sqlalchemy import select
    from vlmevals.db.engine import session_scope
    from vlmevals.db.models import Model

    with session_scope(engine) as s:
        base = s.scalars(select(Model).where(Model.name == like)).one()
        s.add(
            Model(
                name=name,
                display_name=name,
                vlmeval_model=vlmeval_model,
                model_type=base.model_type,
                params_b=base.params_b,
                model_spec=base.model_spec,
                gpus=1,
                launch_mode="single",
                serve=serve,
            )
        )


class Sampler:
    """Every `every_s`: the most connections open to the engine's port and request slots claimed by running runs."""

    def __init__(self, engine: Any, port: Callable[[], int | None], every_s: float = 0.02) -> None:
        self.engine, self.port, self.every_s = engine, port, every_s
        self.peak_connections = self.peak_claimed = 0
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _claimed(self) -> int:
        from sqlalchemy import text

        with self.engine.connect() as conn:
            got = conn.execute(
                text(
                    "SELECT coalesce(sum((fingerprint->'concurrency'->>'api_nproc')::int), 0) FROM eval_runs "
                    "WHERE status = 'running'"
                )
            ).scalar()
        return int(got or 0)

    def _run(self) -> None:
        import psutil

        n = 0
        while not self._stop.is_set():
            port = self.port()
            if port:
                conns = psutil.net_connections(kind="tcp")
                open_ = sum(1 for c in conns if c.laddr and c.laddr.port == port and c.status == "ESTABLISHED")
                self.peak_connections = max(self.peak_connections, open_)
            if n % 10 == 0:
                self.peak_claimed = max(self.peak_claimed, self._claimed())
            n += 1
            time.sleep(self.every_s)

    def stop(self) -> None:
        self._stop.set()
        self.thread.join()


def server_row(engine: Any, server_id: int) -> Any:
    from vlmevals.db.engine import session_scope
    from vlmevals.serving import registry

    with session_scope(engine) as s:
        srv = registry.get_server(s, server_id)
        s.expunge(srv)
    return srv


def accuracy(engine: Any, run_id: int) -> float | None:
    from vlmevals.db.engine import session_scope
    from vlmevals.db.models import EvalRun

    with session_scope(engine) as s:
        run = s.get_one(EvalRun, run_id)
        assert run.status == "completed", f"eval run {run_id} is {run.status}: {run.error}"
        return None if run.primary_metric is None else round(float(run.primary_metric), 2)


def run_served(
    engine: Any, settings: Any, tasks: list[str], model: str, stats_url: Callable[[Any], str | None] | None = None
) -> dict[str, Any]:
    """Queue the runs (the first requests the server), run the server's task in a thread, then every run's
    served inference concurrently once it is ready; the server stops when no run needs it."""
    from vlmevals.pipeline import serve
    from vlmevals.pipeline.inference import served_inference_step

    infos = [queue(engine, t, model, settings) for t in tasks]
    sid = infos[0]["server_id"]
    assert all(i["server_id"] == sid for i in infos), "the runs share one server"
    outcome: dict[str, Any] = {}
    t0 = time.monotonic()

    def serve_it() -> None:
        try:
            outcome["reason"] = serve.serve_step(engine, sid, f"server-{sid}", settings)
        except BaseException as err:  # reported below
            outcome["reason"] = err
        outcome["stopped"] = time.monotonic()

    server_thread = threading.Thread(target=serve_it, daemon=True)
    server_thread.start()
    sampler = Sampler(engine, lambda: server_row(engine, sid).port)
    while not serve.server_ready(engine, infos[0]["eval_run_id"]):
        time.sleep(0.1)
    ready = time.monotonic()
    durations: dict[int, float] = {}
    errors: list[BaseException] = []

    def infer(run_id: int) -> None:
        start = time.monotonic()
        try:
            served_inference_step(engine, run_id, 1, settings)
        except BaseException as err:
            import traceback

            log(f"eval run {run_id} failed: {''.join(traceback.format_exception(err))}")
            errors.append(err)
        durations[run_id] = time.monotonic() - start

    threads = [threading.Thread(target=infer, args=(i["eval_run_id"],)) for i in infos]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    runs_done = time.monotonic()
    if errors:  # a failed run stays `running` here (no Airflow callback fails it): stop the server ourselves
        from vlmevals.db.engine import session_scope
        from vlmevals.serving import registry

        with session_scope(engine) as s:
            registry.request_stop(s, sid, "bench: an eval run failed")
    srv_stats = None
    if stats_url:
        import httpx

        url = stats_url(server_row(engine, sid))
        srv_stats = httpx.get(url, timeout=10).json() if url else None
    server_thread.join()
    sampler.stop()
    if errors:
        raise errors[0]
    srv = server_row(engine, sid)
    if not isinstance(outcome.get("reason"), str):
        raise RuntimeError(f"server {sid} failed: {outcome.get('reason')}")
    from vlmevals.pipeline.serve import serve_slots

    lifetime = outcome["stopped"] - t0
    log_text = Path(srv.log_path or "").read_text(errors="replace") if srv.log_path else ""
    return {
        "runs": [i["eval_run_id"] for i in infos],
        "server_id": sid,
        "server_start_to_ready_s": round(ready - t0, 1),
        "wall_s": round(runs_done - t0, 1),
        "runs_inference_s": [round(durations[i["eval_run_id"]], 1) for i in infos],
        "server_lifetime_s": round(lifetime, 1),
        "server_stop_reason": outcome["reason"],
        "slots": serve_slots(engine, sid),
        "pool_slot_s": round(lifetime * serve_slots(engine, sid), 1),
        "loads_row": srv.loads,
        "loading_lines": log_text.count("[transformers] Loading ") or log_text.count("stand-in: Loading "),
        "peak_connections": sampler.peak_connections,
        "peak_claimed_api_nproc": sampler.peak_claimed,
        "engine_stats": srv_stats,
        "engine_log": srv.log_path,
        "accuracy": [accuracy(engine, i["eval_run_id"]) for i in infos],
    }


# ------------------------------------------------------------------------------------------------ Part 1 (CPU)
def part_cpu(engine: Any, questions: int, engine_args: list[str]) -> dict[str, Any]:
    from vlmevals.core.settings import get_settings
    from vlmevals.devtools.demo.benchmark import DEMO_BENCHMARKS, write_benchmark
    from vlmevals.devtools.demo.train import CKPT_DIR_NAME, train_checkpoints
    from vlmevals.gpu.slots import slots_for
    from vlmevals.pipeline.inference import inference_step

    settings = get_settings()
    if not settings.engine_python_transformers:
        raise SystemExit(
            "no transformers engine environment: run scripts/setup_engines.sh or set EVALS_ENGINE_PYTHON_TRANSFORMERS"
        )
    for name in DEMO_BENCHMARKS:
        write_benchmark(name, settings.lmu_data, n=questions)
    t = time.monotonic()
    dirs = train_checkpoints(settings.models_dir / CKPT_DIR_NAME)
    log(f"trained checkpoints ready in {time.monotonic() - t:.0f} s: {dirs[400]}")
    add_served_model(
        engine,
        SERVED_MODEL,
        IN_PROCESS_MODEL,
        "DemoTinyIdefics3TrainedServed",
        {"engine": "transformers", "args": engine_args, "startup_timeout_s": 300, "idle_timeout_s": 1},
    )
    settings = settings.model_copy(update={"server_poll_s": 0.5})

    log("(a) in-process: the 3 runs' inference one after the other")
    inproc: dict[str, Any] = {"runs_inference_s": [], "accuracy": []}
    t0 = time.monotonic()
    for task in SUITE:
        info = queue(engine, task, IN_PROCESS_MODEL, settings)
        start = time.monotonic()
        inference_step(engine, info["eval_run_id"], 1, settings)
        inproc["runs_inference_s"].append(round(time.monotonic() - start, 1))
        inproc["accuracy"].append(accuracy(engine, info["eval_run_id"]))
    inproc["wall_s"] = round(time.monotonic() - t0, 1)
    inproc["slots"] = slots_for(1)
    inproc["pool_slot_s"] = round(sum(inproc["runs_inference_s"]) * inproc["slots"], 1)
    inproc["loads"] = len(SUITE)
    inproc["peak_in_flight"] = 1
    log(f"in-process: {inproc}")

    log("(b) served: one transformers serve, the 3 runs concurrently")
    served = run_served(engine, settings, list(SUITE), SERVED_MODEL)
    log(f"served: {served}")
    return {
        "questions_per_benchmark": questions,
        "checkpoint": str(dirs[400]),
        "engine_args": engine_args,
        "in_process": inproc,
        "served": served,
    }


# ------------------------------------------------------------------------------------ Part 2 validation (scaled)
def part_validation(engine: Any, tmp: Path, scale: float, benchmarks: int, questions: int, tokens: float) -> dict:
    from vlmevals.core.settings import get_settings
    from vlmevals.db.engine import session_scope
    from vlmevals.db.models import Task
    from vlmevals.devtools.demo.benchmark import render_benchmark

    bin_dir = tmp / "standin-venv" / "bin"
    bin_dir.mkdir(parents=True)
    for command, eng in {"vllm": "vllm", "python": "vllm"}.items():
        (bin_dir / command).write_text(f'#!/bin/sh\nexec {sys.executable} {STANDIN} {eng} "$@"\n')
        (bin_dir / command).chmod(0o755)
    settings = get_settings().model_copy(update={"engine_python_vllm": str(bin_dir / "python"), "server_poll_s": 0.5})
    tasks = [f"bench-serve-{i:02d}" for i in range(benchmarks)]
    with session_scope(engine) as s:
        for i, name in enumerate(tasks):
            data = f"BENCH_SERVE_{i:02d}"
            (settings.lmu_data / f"{data}.tsv").write_bytes(render_benchmark("DEMO_SHAPES_MCQ", n=questions))
            s.add(Task(name=name, display_name=name, vlmeval_data=data, vlmeval_dataset_class="CustomMCQDataset"))
    points = answers_curve(tokens, scale)
    curve_arg = ",".join(f"{c:g}:{r:.4f}" for c, r in points)
    add_served_model(
        engine,
        "bench-7b-vllm",
        "demo-tiny-idefics3",
        "Bench7BVllm",
        {
            "engine": "vllm",
            "args": ["--load-seconds", f"{LOAD_S / scale:g}", "--throughput-curve", curve_arg],
            "startup_timeout_s": 300,
            "idle_timeout_s": 1,
        },
    )
    log(f"validation: {benchmarks} x {questions} questions, stand-in vLLM at time scale {scale:g} ({curve_arg})")
    got = run_served(
        engine, settings, tasks, "bench-7b-vllm", stats_url=lambda srv: f"http://{srv.host}:{srv.port}/stats"
    )
    # the same workload simulated at the same scale; VLMEvalKit's per-run start-up and tail measured from the run
    answering = (got["engine_stats"] or {}).get("answered", benchmarks * questions)
    w = Workload(
        benchmarks,
        questions,
        LOAD_S / scale,
        nproc=settings.serve_api_nproc,
        cap=settings.serve_max_concurrency,
        poll_s=settings.endpoint_poll_s,
        linger_s=1.0,
    )
    bare = served_s(w, points)
    # what the engine measured itself: the seconds it had requests in flight, against the simulation's; the rest of
    # the server's life after it was ready is the pipeline's fixed cost per wave of runs (VLMEvalKit start-up,
    # dataset build, scoring, teardown, the claim's polling; not time-scaled), plus the 1 s linger
    busy = float((got["engine_stats"] or {}).get("busy_s", 0.0))
    waves = math.ceil(benchmarks / max(1, settings.serve_max_concurrency // settings.serve_api_nproc))
    idle = max(0.0, got["server_lifetime_s"] - got["server_start_to_ready_s"] - busy - w.linger_s)
    return {
        "time_scale": scale,
        "benchmarks": benchmarks,
        "questions": questions,
        "answered_by_engine": answering,
        "measured": got,
        "simulated_answering_s": round(bare["answering_s"], 1),
        "measured_answering_s": round(busy, 1),
        "answering_error_pct": round(100 * (busy - bare["answering_s"]) / bare["answering_s"], 1),
        "simulated_bare_lifetime_s": round(bare["lifetime_s"], 1),
        "idle_while_ready_s": round(idle, 1),
        "waves": waves,
        "fixed_cost_per_wave_s": round(idle / waves, 1),
    }


# ---------------------------------------------------------------------------------------------------- output
def table(out: dict[str, Any]) -> str:
    lines = [f"load average before: {out['load_before']}, after: {out['load_after']} ({out['cpus']} CPUs)"]
    cpu = out.get("cpu")
    if cpu:
        a, b = cpu["in_process"], cpu["served"]
        lines += [
            "",
            f"Part 1 (measured, this machine, CPU): demo suite, 3 x {cpu['questions_per_benchmark']} questions, "
            f"checkpoint {Path(cpu['checkpoint']).name} of the trained demo model",
            f"{'':34}{'in-process':>24}{'served':>24}",
            f"{'wall time (s)':34}{a['wall_s']:>24}{b['wall_s']:>24}",
            f"{'model loads':34}{a['loads']:>24}{str(b['loads_row']) + ' (log ' + str(b['loading_lines']) + ')':>24}",
            f"{'pool-slot-seconds':34}{a['pool_slot_s']:>24}{b['pool_slot_s']:>24}",
            f"{'peak requests in flight':34}{a['peak_in_flight']:>24}{b['peak_connections']:>24}",
            f"{'peak request slots claimed':34}{'-':>24}{b['peak_claimed_api_nproc']:>24}",
            f"{'per-run inference (s)':34}{a['runs_inference_s']!s:>24}{b['runs_inference_s']!s:>24}",
            f"{'accuracy per run':34}{a['accuracy']!s:>24}{b['accuracy']!s:>24}",
            f"served: server ready after {b['server_start_to_ready_s']} s, lived {b['server_lifetime_s']} s, "
            f"stopped: {b['server_stop_reason']}",
        ]
    lines += ["", f"Part 2 (computed from {CURVE_SOURCE}; load {LOAD_S:g} s; 10 x 1,000 questions)"]
    lines.append(f"{'tokens/answer':>14}{'in-process GPU-s':>18}{'served GPU-s':>14}{'ratio':>8}{'loads':>8}")
    for p in out["projection"]:
        lines.append(
            f"{p['answer_tokens']:>14g}{p['in_process_gpu_s']:>18}{p['served_gpu_s']:>14}{p['ratio']:>7}x"
            f"{str(p['loads_in_process']) + '->1':>8}"
        )
    v = out.get("validation")
    if v:
        m = v["measured"]
        lines += [
            "",
            f"Part 2 validation (measured, time scale {v['time_scale']:g}): {v['benchmarks']} x {v['questions']} "
            f"through the pipeline, stand-in vLLM: engine busy {v['measured_answering_s']} s vs simulated "
            f"{v['simulated_answering_s']} s ({v['answering_error_pct']:+}%); server lifetime "
            f"{m['server_lifetime_s']} s (ready after {m['server_start_to_ready_s']} s; idle while ready "
            f"{v['idle_while_ready_s']} s = {v['fixed_cost_per_wave_s']} s per wave of runs x {v['waves']}); loads "
            f"{m['loads_row']} (log {m['loading_lines']}); engine peak in flight "
            f"{(m['engine_stats'] or {}).get('peak')}; answered {v['answered_by_engine']}",
        ]
        if "projection_with_fixed_costs" in out:
            p = out["projection_with_fixed_costs"]
            lines.append(
                f"projection with the measured fixed cost ({p['fixed_cost_per_run_s']} s per VLMEvalKit run "
                "in-process, per wave of 2 runs served): "
                f"in-process {p['in_process_gpu_s']} GPU-s, served {p['served_gpu_s']} GPU-s, ratio {p['ratio']}x"
            )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--questions", type=int, default=200, help="rows per demo benchmark (Part 1)")
    ap.add_argument("--time-scale", type=float, default=10.0, help="stand-in speed-up in the validation run")
    ap.add_argument("--val-benchmarks", type=int, default=10)
    ap.add_argument("--val-questions", type=int, default=1000)
    ap.add_argument("--answer-tokens", type=float, default=128.0, help="tokens per answer of the validation run")
    ap.add_argument(
        "--engine-args", default="", help="the served model's serve.args in Part 1, e.g. '--continuous-batching'"
    )
    ap.add_argument("--skip-cpu", action="store_true")
    ap.add_argument("--skip-validation", action="store_true")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON instead of the table")
    args = ap.parse_args()
    out: dict[str, Any] = {"cpus": os.cpu_count(), "load_before": [round(x, 2) for x in os.getloadavg()]}
    out["projection"] = [projection(tokens) for tokens in (1.0, 16.0, 128.0)]
    tmp = Path(tempfile.mkdtemp(prefix="serving-bench-"))
    pg = None
    try:
        if not (args.skip_cpu and args.skip_validation):
            pg, engine = setup_env(tmp)
            if not args.skip_cpu:
                out["cpu"] = part_cpu(engine, args.questions, args.engine_args.split())
            if not args.skip_validation:
                v = part_validation(
                    engine, tmp, args.time_scale, args.val_benchmarks, args.val_questions, args.answer_tokens
                )
                out["validation"] = v
                # the pipeline's fixed cost per run (VLMEvalKit start-up, scoring, teardown) in both paths,
                # unscaled: in-process it is paid per run on the GPU slot, served per wave of runs
                fixed = v["fixed_cost_per_wave_s"]
                points = answers_curve(args.answer_tokens)
                w = Workload(10, 1000, LOAD_S)
                inproc = in_process_s(w, points) + 10 * fixed
                served = served_s(w, points, dt=0.05)["lifetime_s"] + math.ceil(10 / 2) * fixed
                out["projection_with_fixed_costs"] = {
                    "fixed_cost_per_run_s": fixed,
                    "in_process_gpu_s": round(inproc),
                    "served_gpu_s": round(served),
                    "ratio": round(inproc / served, 2),
                }
    finally:
        if pg is not None:
            from vlmevals.db.engine import get_engine

            get_engine.cache_clear()
            pg.stop(mode="fast")
        shutil.rmtree(tmp, ignore_errors=True)
    out["load_after"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(out, indent=2, default=str) if args.json else table(out), flush=True)


if __name__ == "__main__":
    main()
