"""The distributed path without Docker: Airflow on CeleryExecutor (Redis broker, PostgreSQL metadata DB on
loopback), one Celery worker on the `default` queue and one on the `gpu` queue, an eval run of the demo model.

Redis: `REDIS_URL` if set; else a private `redis-server` (Debian package `redis-server`) on a free port, so that
no other Celery on this machine can take our tasks.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import select, text
from vlmevals.db.engine import session_scope
from vlmevals.db.models import EvalRun

from tests.conftest import RUN_DIR, SUFFIX, _db_url, _free_port, create_database

pytestmark = pytest.mark.e2e
CELERY_AIRFLOW_DB = f"airflow_celery_{SUFFIX}"
GPU_HOST = f"gpu-box-{SUFFIX}"


def _redis_ping(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_timeout=1).ping())
    except redis.RedisError:
        return False


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.fail("no Redis for the Celery test: install it (apt-get install -y redis-server) or set REDIS_URL")
    port = _free_port()
    workdir = tempfile.mkdtemp(prefix="redis-", dir=RUN_DIR)
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", workdir],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        deadline = time.monotonic() + 20
        while not _redis_ping(url):
            assert proc.poll() is None, "redis-server exited at start"
            assert time.monotonic() < deadline, "redis-server did not answer within 20 s"
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def celery_stack(redis_url: str, airflow_db: str, demo_assets):
    """Airflow on CeleryExecutor with its own metadata DB (a second scheduler on the session's DB would take
    our runs), plus a CPU worker (queue default) and a GPU worker (queue gpu, one fake GPU: EVALS_GPUS=0)."""
    from vlmevals.devtools.stack import COMPONENTS, Stack, StackSettings

    create_database(CELERY_AIRFLOW_DB)
    home = RUN_DIR / "celery-stack"
    home.mkdir(exist_ok=True)
    stack = Stack(
        StackSettings.model_validate(
            {
                "EVALS_HOME": str(home),
                "EVALS_AIRFLOW_PORT": _free_port(),
                "DATABASE_URL": os.environ["DATABASE_URL"],
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": _db_url(CELERY_AIRFLOW_DB, "postgresql+psycopg2"),
                "EVALS_AIRFLOW_PARALLELISM": 4,
                "EVALS_EXECUTOR": "CeleryExecutor",
                "REDIS_URL": redis_url,
            }
        )
    )
    res = stack.airflow("db", "migrate", check=False)
    assert res.returncode == 0, res.stderr[-3000:]
    res = stack.airflow("pools", "set", "gpu", "1", "one slot per GPU", check=False)
    assert res.returncode == 0, res.stderr[-2000:]
    workers = {
        "worker-default": ("default", "cpu-worker", {"EVALS_GPUS": "none"}),  # no GPU: CPU fallback
        "worker-gpu": ("gpu", "gpu-worker", {"EVALS_GPUS": "0", "EVALS_GPU_HOST": GPU_HOST}),
    }
    # other DAGs of the folder (e.g. scheduled ones) stay paused: they would compete for the two workers
    for name in COMPONENTS:
        stack.start_component(name, extra_env={"AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True"})
    for name, (queue, hostname, env) in workers.items():
        stack.start_component(
            name,
            args=("celery", "worker", "--queues", queue, "--celery-hostname", f"{hostname}@%h", "--concurrency", "1"),
            extra_env={
                "EVALS_WORKER_NAME": hostname,
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(_free_port()),
                **env,
            },
        )
    try:
        stack.wait_healthy()
        yield stack
    finally:
        stack.stop(components=(*COMPONENTS, *workers), database=False)


def test_inference_runs_on_the_gpu_worker(celery_stack, seeded) -> None:
    started = time.monotonic()
    client = httpx.Client(
        base_url=celery_stack.api_url, timeout=30, headers={"Authorization": f"Bearer {celery_stack.token('admin')}"}
    )
    deadline = time.monotonic() + 120
    while client.get("/api/v2/dags/eval_run").status_code != 200:
        assert time.monotonic() < deadline, "eval_run never parsed by the dag-processor"
        time.sleep(1)
    assert client.patch("/api/v2/dags/eval_run", json={"is_paused": False}).status_code == 200
    r = client.post(
        "/api/v2/dags/eval_run/dagRuns",
        json={"logical_date": None, "conf": {"task": "demo-shapes-mcq", "model": "demo-tiny-idefics3"}},
    )
    assert r.status_code == 200, r.text
    dag_run_id = r.json()["dag_run_id"]
    deadline = time.monotonic() + 240
    state = "queued"
    while time.monotonic() < deadline:
        state = client.get(f"/api/v2/dags/eval_run/dagRuns/{dag_run_id}").json()["state"]
        if state in ("success", "failed"):
            break
        time.sleep(1)
    tis = {
        ti["task_id"]: ti
        for ti in client.get(f"/api/v2/dags/eval_run/dagRuns/{dag_run_id}/taskInstances").json()["task_instances"]
    }
    summary = {k: (v["state"], v["hostname"], v["queue"]) for k, v in tis.items()}
    logs = celery_stack.home / "logs"
    assert state == "success", f"{summary}\n" + "\n".join(
        f"--- {p.name}\n{p.read_text(errors='replace')[-2500:]}" for p in sorted(logs.glob("worker-*.log"))
    )
    print(f"\ncelery eval run: {time.monotonic() - started:.1f} s from trigger to success; {summary}")

    assert tis["inference"]["queue"] == "gpu" and tis["inference"]["hostname"] == "gpu-worker"
    for task_id in ("queue", "scoring", "ingest_metrics"):
        assert tis[task_id]["queue"] == "default" and tis[task_id]["hostname"] == "cpu-worker", summary
    with session_scope(seeded) as s:
        run = s.scalar(select(EvalRun).where(EvalRun.dag_run_id == dag_run_id))
        assert run is not None and run.status == "completed", run and run.error
        assert run.primary_metric is not None
        lease_rows = s.execute(text("SELECT device, holder FROM gpu_leases WHERE host = :h"), {"h": GPU_HOST}).all()
    assert lease_rows == [(0, None)], "the gpu worker leased its GPU 0 and released it"
    log = client.get(
        f"/api/v2/dags/eval_run/dagRuns/{dag_run_id}/taskInstances/inference/logs/1",
        headers={"Accept": "application/json"},
    )
    assert log.status_code == 200, log.text
    assert f"leased GPUs 0 on {GPU_HOST}" in log.text and f"released GPUs 0 on {GPU_HOST}" in log.text
