"""Kill inference midway (the task process, SIGKILL): the retry resumes from VLMEvalKit's partial results and
re-infers only what was missing; the run completes with the same score as an uninterrupted one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from vlmevals.core.settings import get_settings
from vlmevals.db.engine import session_scope
from vlmevals.db.models import Model, Task
from vlmevals.devtools.demo.benchmark import render_benchmark
from vlmevals.pipeline import steps as pipeline
from vlmevals.runs import lifecycle as runs

from tests.doubles.openai_server import serve

pytestmark = pytest.mark.e2e
N = 40
REFERENCE: dict = {}


@pytest.fixture()
def served(seeded):
    tsv = get_settings().lmu_data / "RESUME_MCQ.tsv"
    tsv.write_bytes(render_benchmark("DEMO_SHAPES_MCQ", n=N))
    server = serve(mode="oracle", tsv=str(tsv), delay_s=0.1)
    with session_scope(seeded) as s:
        s.add(
            Task(
                name="resume-mcq",
                display_name="Resume",
                vlmeval_data="RESUME_MCQ",
                vlmeval_dataset_class="CustomMCQDataset",
            )
        )
        s.add(
            Model(
                name="served-oracle",
                display_name="Served",
                vlmeval_model="served-model",
                endpoint_base_url=server.base_url,
                gpus=0,
            )
        )
    yield server
    server.stop()


def _queue(engine) -> int:
    info = pipeline.queue_step(
        engine,
        {"task": "resume-mcq", "model": "served-oracle", "api_nproc": 1},
        dag_id="eval_run",
        dag_run_id=f"test__{time.time_ns()}",
        run_type="manual",
        user=None,
    )
    return info["eval_run_id"]


def _progress(engine, run_id: int) -> int:
    with session_scope(engine) as s:
        return runs.get_run(s, run_id).progress_done


def _group_gone(pgid: int, timeout_s: float = 15) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.2)
    return False


def _finish(engine, run_id: int, try_number: int) -> dict:
    pipeline.scoring_step(engine, run_id, try_number)
    pipeline.ingest_step(engine, run_id)
    with session_scope(engine) as s:
        run = runs.get_run(s, run_id)
        assert run.status == "completed", run.error
        return {"primary": run.primary_metric, "table": run.metrics["table"]}


@pytest.mark.parametrize("kill_at", [8, 25])
def test_killed_task_process_resumes(seeded, served, kill_at: int) -> None:
    if not REFERENCE:  # one uninterrupted run to compare with
        reference_id = _queue(seeded)
        pipeline.inference_step(seeded, reference_id, 1)
        REFERENCE.update(_finish(seeded, reference_id, 1))
        served.reset_stats()
    reference = REFERENCE

    run_id = _queue(seeded)
    code = (
        "from vlmevals.db.engine import get_engine; from vlmevals.pipeline.steps import inference_step; "
        f"inference_step(get_engine(), {run_id}, 1)"
    )
    task_proc = subprocess.Popen([sys.executable, "-c", code], env=os.environ.copy())
    with session_scope(seeded) as s:
        artifacts = Path(runs.get_run(s, run_id).artifacts_dir)
    deadline = time.monotonic() + 120
    while _progress(seeded, run_id) < kill_at:
        assert task_proc.poll() is None, "inference ended before the kill point"
        assert time.monotonic() < deadline, "no progress"
        time.sleep(0.1)
    worker_pgid = int((artifacts / "worker.pid").read_text())
    os.kill(task_proc.pid, signal.SIGKILL)  # like the OOM killer or a lost worker: no cleanup code runs
    task_proc.wait()
    assert _group_gone(worker_pgid), "VLMEvalKit outlived its task process"
    with session_scope(seeded) as s:
        assert runs.get_run(s, run_id).status == "running"
    answered_before = served.stats()["answered"]
    served.reset_stats()

    out = pipeline.inference_step(seeded, run_id, try_number=2)
    again = served.stats()["answered"]
    assert out["resumed_samples"] >= kill_at - 1
    assert out["resumed_samples"] + again == N, (out, again)  # nothing answered twice, nothing lost
    assert again < N - kill_at + 2
    assert answered_before >= kill_at

    assert _finish(seeded, run_id, 2) == reference  # same metrics as the uninterrupted run
    with session_scope(seeded) as s:
        run = runs.get_run(s, run_id)
        assert run.progress_done == run.progress_total == N
        assert [e.status for e in run.events] == ["queued", "running", "running", "completed"]
