#!/usr/bin/env bash
# GPU check for the scale-out issue, for a machine with an NVIDIA GPU (not part of CI): the demo model runs
# through the real pipeline (queue -> inference -> scoring -> ingest) twice, in both launch modes:
#   1. launch_mode single:   one process, CUDA_VISIBLE_DEVICES = the leased GPU
#   2. launch_mode torchrun: torchrun --nproc-per-node 1, same lease
# Each inference leases its GPU in gpu_leases (a private PostgreSQL in a temp folder), and a sampler thread
# records the VLMEvalKit processes that nvidia-smi sees computing on a GPU: proof the model ran on the device.
# 3. served (issue 22): the same model as a served model (`serve.engine` = vllm): the service's own model_server
#    steps start vLLM on the leased GPU (one load), the run's requests go to it through VLMEvalKit's client, then
#    the server stops; reports the engine's load time, the run's wall time and the loads. vLLM comes from
#    .venv-engines/vllm (built here from PyPI when missing and reachable) or EVALS_ENGINE_PYTHON_VLLM.
# Prints one JSON line per mode and exits non-zero on any failure.
#
#   scripts/gpu_check.sh              # needs .venv (scripts/setup.sh) and nvidia-smi; PyPI for vLLM once
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
command -v nvidia-smi >/dev/null || { echo "nvidia-smi not found: this check needs an NVIDIA GPU" >&2; exit 2; }
nvidia-smi -L
WORK=$(mktemp -d /tmp/gpu-check-XXXXXX)
export LMUData="$WORK/LMUData" VLMEVAL_OUTPUTS="$WORK/outputs" EVALS_MODELS_DIR="$WORK/models"
export EVALS_PROGRESS_INTERVAL_S=0.5 PYTHONPATH="$PWD/include${PYTHONPATH:+:$PYTHONPATH}"
unset CUDA_VISIBLE_DEVICES EVALS_GPUS
mkdir -p "$LMUData"
if [ -z "${EVALS_ENGINE_PYTHON_VLLM:-}" ] && [ ! -x .venv-engines/vllm/bin/python ]; then
  (python3 -m venv .venv-engines/vllm && .venv-engines/vllm/bin/pip install -q vllm) \
    || echo "could not install vLLM into .venv-engines/vllm: the served mode will fail" >&2
fi

exec "$PY" - "$WORK" <<'PY'
import json, os, socket, subprocess, sys, threading, time
from pathlib import Path

work = Path(sys.argv[1])
with socket.socket() as s:
    s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]
from vlmevals.devtools.localpg import LocalPostgres
pg = LocalPostgres(work / "pgdata", port=port)
pg.start(); pg.ensure_database("evals")
os.environ["DATABASE_URL"] = pg.url("evals")

from sqlalchemy import text
from vlmevals.gpu import detect as gpus
from vlmevals.pipeline import steps as pipeline
from vlmevals.catalogue.store import seed
from vlmevals.db.engine import get_engine, session_scope, upgrade
from vlmevals.devtools.demo.benchmark import write_benchmark
from vlmevals.devtools.demo.model import build_demo_model
from vlmevals.core.settings import get_settings
from vlmevals.vlmevalkit.command import build_invocation

settings = get_settings()
upgrade(settings.database_url)
engine = get_engine(settings.database_url)
with session_scope(engine) as s:
    seed(s)
write_benchmark("DEMO_SHAPES_MCQ", settings.lmu_data)
build_demo_model(settings.models_dir / "demo-tiny-idefics3")
print("detected GPUs:", gpus.detect_gpus(None), flush=True)


def gpu_apps(stop: threading.Event, seen: set[str]) -> None:
    while not stop.is_set():
        res = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,gpu_uuid,used_memory", "--format=csv,noheader"],
                             capture_output=True, text=True)
        for line in res.stdout.strip().splitlines():
            pid = line.split(",")[0].strip()
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if "vlmeval" in cmd:
                seen.add(f"{line} :: {cmd[:160]}")
        time.sleep(0.5)


ok = True
for mode in ("single", "torchrun"):
    with engine.begin() as conn:
        conn.execute(text("UPDATE models SET launch_mode = :m, gpus = 1 WHERE name = 'demo-tiny-idefics3'"),
                     {"m": mode})
    started = time.monotonic()
    info = pipeline.queue_step(engine, {"task": "demo-shapes-mcq", "model": "demo-tiny-idefics3"},
                               dag_id="gpu_check", dag_run_id=f"gpu_check_{mode}", run_type="manual", user="check")
    run_id = info["eval_run_id"]
    stop, seen = threading.Event(), set()
    sampler = threading.Thread(target=gpu_apps, args=(stop, seen), daemon=True)
    sampler.start()
    err = None
    try:
        pipeline.inference_step(engine, run_id)
        pipeline.scoring_step(engine, run_id)
        got = pipeline.ingest_step(engine, run_id)
    except Exception as e:  # report and go on to the other mode
        err, got = repr(e), {}
    stop.set(); sampler.join()
    art = Path(settings.outputs_dir) / "runs" / str(run_id)
    cfg = (art / "worker_stdout.log").read_text(errors="replace") if (art / "worker_stdout.log").exists() else ""
    with engine.connect() as conn:
        leases = [tuple(r) for r in conn.execute(text("SELECT host, device, holder FROM gpu_leases"))]
    ctx = pipeline.load_context(engine, run_id)
    argv = build_invocation(settings=settings, task=ctx.task, model=ctx.model, work_dir=ctx.artifacts,
                            mode="infer").argv
    result = {"mode": mode, "run_id": run_id, "launch": " ".join(argv[1:4]), "ok": err is None and bool(seen), "error": err,
              "primary_metric": got.get("primary_metric"), "seconds": round(time.monotonic() - started, 1),
              "vlmeval_processes_on_gpu": sorted(seen), "leases_after": leases,
              "torchrun_banner": [l for l in cfg.splitlines() if "WORLD_SIZE" in l][:2]}
    print(json.dumps(result), flush=True)
    ok = ok and result["ok"] and all(h is None for _, _, h in leases)
# 3. served: a copy of the demo model with a serve spec; the server's task runs in a thread, as in the tests
from vlmevals.pipeline import serve as serving
from vlmevals.pipeline.inference import served_inference_step
from vlmevals.serving import registry
with engine.begin() as conn:
    conn.execute(text(
        "INSERT INTO models (name, display_name, vlmeval_model, model_spec, gpus, serve) SELECT 'demo-served-vllm', "
        "'demo served by vLLM', 'DemoServedVllm', model_spec, 1, CAST(:serve AS jsonb) FROM models "
        "WHERE name = 'demo-tiny-idefics3'"), {"serve": json.dumps(
            {"engine": "vllm", "args": ["--max-model-len", "2048", "--gpu-memory-utilization", "0.5"],
             "startup_timeout_s": 900, "idle_timeout_s": 1})})
started, err, got = time.monotonic(), None, {}
info = pipeline.queue_step(engine, {"task": "demo-shapes-mcq", "model": "demo-served-vllm"},
                           dag_id="gpu_check", dag_run_id="gpu_check_served", run_type="manual", user="check")
box: dict = {}
server = threading.Thread(target=lambda: box.update(
    reason=serving.serve_step(engine, info["server_id"], "gpu_check_server", settings)), daemon=True)
server.start()
try:
    while not serving.server_ready(engine, info["eval_run_id"]):
        time.sleep(1)
    served_inference_step(engine, info["eval_run_id"])
    pipeline.scoring_step(engine, info["eval_run_id"])
    got = pipeline.ingest_step(engine, info["eval_run_id"])
except Exception as e:
    err = repr(e)
server.join(120)
with session_scope(engine) as s:
    srv = registry.get_server(s, info["server_id"])
    row = {"state": srv.state, "reason": srv.reason, "loads": srv.loads, "engine_version": srv.engine_version,
           "load_s": (srv.ready_at - srv.started_at).total_seconds() if srv.ready_at and srv.started_at else None,
           "log": srv.log_path}
result = {"mode": "served", "ok": err is None and row["loads"] == 1, "error": err, "server": row,
          "primary_metric": got.get("primary_metric"), "seconds": round(time.monotonic() - started, 1)}
print(json.dumps(result, default=str), flush=True)
ok = ok and result["ok"]
pg.stop()
sys.exit(0 if ok else 1)
PY
