"""Faults an evaluation must survive or end cleanly on, with real VLMEvalKit subprocesses and real PostgreSQL.

- the VLMEvalKit subprocess SIGKILLed midway (the task process survives): the attempt fails as retryable, the
  retry resumes and the run ends with the uninterrupted run's metrics (killing the task process itself is
  tests/e2e/test_resume.py);
- PostgreSQL stopped during ingest_metrics and started again: the retry stores everything exactly once;
- a corrupt prediction file, a full disk in the artifacts folder: a failed run with a readable error, files kept;
- an API model failing on some samples: the failures are counted, not silently scored as wrong.

The served model is the OpenAI-compatible test server (a real HTTP server speaking the protocol VLMEvalKit's
`--base-url` client uses), answering after a small delay so a kill lands midway.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from vlmevals.core.errors import VLMEvalFailure
from vlmevals.core.settings import get_settings
from vlmevals.db.engine import session_scope
from vlmevals.db.models import EvalSample, Model, Task
from vlmevals.devtools.demo.benchmark import render_benchmark
from vlmevals.pipeline import steps as pipeline
from vlmevals.runs import lifecycle as runs

from tests.doubles.openai_server import ServerHandle, serve

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
N = 40
DATA = "FAULTS_MCQ"
VMODEL = "served-model"
SAVE_INTERVAL = 10  # VLMEvalKit saves partial answers at least every 10 items
REFERENCE: dict[str, Any] = {}


def _add_catalogue(engine, base_url: str) -> None:
    with session_scope(engine) as s:
        s.add(
            Task(name="faults-mcq", display_name="Faults", vlmeval_data=DATA, vlmeval_dataset_class="CustomMCQDataset")
        )
        s.add(
            Model(name="faults-served", display_name="Served", vlmeval_model=VMODEL, endpoint_base_url=base_url, gpus=0)
        )


@pytest.fixture(scope="module")
def server() -> Iterator[ServerHandle]:
    tsv = get_settings().lmu_data / f"{DATA}.tsv"
    tsv.parent.mkdir(parents=True, exist_ok=True)
    tsv.write_bytes(render_benchmark("DEMO_SHAPES_MCQ", n=N))
    handle = serve(mode="oracle", tsv=str(tsv), delay_s=0.1)
    yield handle
    handle.stop()


@pytest.fixture()
def served(seeded, server: ServerHandle) -> ServerHandle:
    server.set_policy(delay_s=0.1, fail_every=0, fail_rate=0.0)
    server.reset_stats()
    _add_catalogue(seeded, server.base_url)
    return server


def _queue(engine, **options: Any) -> int:
    conf = {"task": "faults-mcq", "model": "faults-served", "api_nproc": 1, **options}
    info = pipeline.queue_step(
        engine, conf, dag_id="eval_run", dag_run_id=f"test__{time.time_ns()}", run_type="manual", user=None
    )
    return int(info["eval_run_id"])


def _run(engine, run_id: int):
    with session_scope(engine) as s:
        run = runs.get_run(s, run_id)
        _ = run.events
        return run


def _finish(engine, run_id: int, try_number: int = 1) -> dict[str, Any]:
    pipeline.scoring_step(engine, run_id, try_number)
    pipeline.ingest_step(engine, run_id)
    run = _run(engine, run_id)
    assert run.status == "completed", run.error
    return {"primary": run.primary_metric, "table": run.metrics["table"]}


def _reference(engine, server: ServerHandle) -> dict[str, Any]:
    """One uninterrupted run (computed once per module): metrics to compare with, artifacts to copy."""
    if not REFERENCE:
        run_id = _queue(engine)
        out = pipeline.inference_step(engine, run_id, 1)
        assert out["stored"] and _run(engine, run_id).status == "completed", "scored in-process: stored at once"
        REFERENCE.update(_finish(engine, run_id))
        REFERENCE["artifacts"] = Path(_run(engine, run_id).artifacts_dir)
        server.reset_stats()
    return REFERENCE


def _airflow_keeps_retrying(err: Exception) -> bool:
    """What the DAG does with this error: retry (the error itself) or fail for good (AirflowFailException)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("eval_run_dag_module", ROOT / "dags" / "eval_run.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod._as_airflow_error(err) is err


def _in_thread(fn, *args: Any) -> tuple[threading.Thread, dict[str, Any]]:
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["out"] = fn(*args)
        except BaseException as err:
            box["err"] = err

    t = threading.Thread(target=target, daemon=True)
    t.start()
    return t, box


def _settled_answers(served: ServerHandle, quiet_s: float = 1.0) -> int:
    """The server's answer count once it has stopped moving (a killed client's requests still get answered)."""
    last, since = served.stats()["answered"], time.monotonic()
    while time.monotonic() - since < quiet_s:
        time.sleep(0.1)
        now = served.stats()["answered"]
        if now != last:
            last, since = now, time.monotonic()
    return int(last)


@pytest.mark.parametrize("kill_at", [12, 27])
def test_killed_vlmeval_subprocess_resumes(seeded, served: ServerHandle, kill_at: int) -> None:
    reference = _reference(seeded, served)
    run_id = _queue(seeded)
    artifacts = Path(_run(seeded, run_id).artifacts_dir)
    thread, box = _in_thread(pipeline.inference_step, seeded, run_id, 1)
    deadline = time.monotonic() + 180
    while _run(seeded, run_id).progress_done < kill_at:
        assert thread.is_alive(), f"inference ended before the kill point: {box}"
        assert time.monotonic() < deadline, "no progress"
        time.sleep(0.1)
    worker = int((artifacts / "worker.pid").read_text())
    os.kill(worker, signal.SIGKILL)  # the OOM killer's way: VLMEvalKit itself dies, our task process lives on
    thread.join(60)
    assert not thread.is_alive()
    err = box.get("err")
    assert isinstance(err, VLMEvalFailure) and err.retryable, box
    assert "exited with code -9" in str(err)
    assert _airflow_keeps_retrying(err), "a killed subprocess must be retried, not failed for good"
    assert _run(seeded, run_id).status == "running"  # until the retry (or the failure callback) decides
    answered_before = _settled_answers(served)  # requests the killed worker had in flight are answered by now
    served.reset_stats()

    out = pipeline.inference_step(seeded, run_id, try_number=2)
    again = served.stats()["answered"]
    resumed = out["resumed_samples"]
    assert resumed >= kill_at - 1 and resumed + again == N, (out, again)  # nothing lost, nothing answered twice
    assert answered_before - resumed <= SAVE_INTERVAL, "re-inferred more than one save interval"
    assert _finish(seeded, run_id, 2) == {k: reference[k] for k in ("primary", "table")}
    run = _run(seeded, run_id)
    assert run.progress_done == run.progress_total == N and run.attempts == 2
    assert [e.status for e in run.events] == ["queued", "running", "running", "completed"]
    log = (artifacts / "worker_stderr.log").read_text()
    assert len(re.findall(r"^===== (?:infer|all) attempt [12] ", log, flags=re.MULTILINE)) == 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def private_pg(tmp_path_factory: pytest.TempPathFactory):
    """A PostgreSQL of this module alone, so stopping it disturbs no other test."""
    from vlmevals.db.engine import get_engine, upgrade
    from vlmevals.devtools.localpg import LocalPostgres

    pg = LocalPostgres(tmp_path_factory.mktemp("faults-pg") / "pgdata", port=_free_port())
    pg.start()
    pg.ensure_database("evals")
    url = pg.url("evals")
    upgrade(url)
    engine = get_engine(url)
    try:
        yield pg, engine
    finally:
        engine.dispose()
        pg.stop(mode="immediate")


def test_failed_early_store_is_left_to_ingest_metrics(seeded, served: ServerHandle, monkeypatch) -> None:
    """`inference` storing the result it scored must never fail the task (a retry would rerun VLMEvalKit)."""
    reference = _reference(seeded, served)
    from vlmevals.pipeline import ingest

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("database hiccup")

    run_id = _queue(seeded)
    with monkeypatch.context() as m:
        m.setattr(ingest, "store_result", broken)
        out = pipeline.inference_step(seeded, run_id, 1)
    assert out["stored"] is False and _run(seeded, run_id).status == "running"
    assert _finish(seeded, run_id) == {k: reference[k] for k in ("primary", "table")}
    assert [e.status for e in _run(seeded, run_id).events] == ["queued", "running", "completed"]


def test_postgres_down_during_ingest(seeded, served: ServerHandle, private_pg, monkeypatch) -> None:
    pg, engine = private_pg
    reference = _reference(seeded, served)
    _add_catalogue(engine, served.base_url)
    with session_scope(engine) as s:
        run_id = runs.create_run(s, "faults-mcq", "faults-served", triggered_by="airflow_rest").id
    with session_scope(engine) as s:
        runs.mark_running(s, run_id, 1)
    artifacts = Path(_run(engine, run_id).artifacts_dir)
    shutil.copytree(reference["artifacts"], artifacts, dirs_exist_ok=True)  # inference and scoring are done

    real_mark_completed = runs.mark_completed
    calls: list[int] = []

    def db_dies_first(*args: Any, **kwargs: Any) -> bool:
        calls.append(1)
        if len(calls) == 1:  # samples are stored; the server goes away before the run row is updated
            pg.stop(mode="immediate")
        return real_mark_completed(*args, **kwargs)

    monkeypatch.setattr(runs, "mark_completed", db_dies_first)
    with pytest.raises(OperationalError) as caught:
        pipeline.ingest_step(engine, run_id)
    assert _airflow_keeps_retrying(caught.value), "a lost database connection must be retried"
    pg.start()

    def samples() -> int:
        with session_scope(engine) as s:
            return int(s.scalar(select(func.count()).select_from(EvalSample).where(EvalSample.run_id == run_id)))

    assert samples() == N, "what was committed before the outage is still there"
    assert _run(engine, run_id).status == "running"
    out = pipeline.ingest_step(engine, run_id)  # Airflow's retry of ingest_metrics
    run = _run(engine, run_id)
    assert out["primary_metric"] == reference["primary"] == run.primary_metric
    assert run.status == "completed" and run.metrics["table"] == reference["table"]
    assert samples() == N, "the retry replaced the samples, it did not add a second copy"
    assert run.samples_total == N and run.samples_failed == 0
    assert [e.status for e in run.events] == ["queued", "running", "completed"]


def test_corrupt_prediction_file_fails_clearly(seeded, served: ServerHandle) -> None:
    reference = _reference(seeded, served)
    run_id = _queue(seeded)
    with session_scope(seeded) as s:
        runs.mark_running(s, run_id, 1)
    artifacts = Path(_run(seeded, run_id).artifacts_dir)
    shutil.copytree(reference["artifacts"], artifacts, dirs_exist_ok=True)
    pred_root = artifacts / VMODEL
    for p in pred_root.iterdir():  # keep only inference's output: scoring must read the prediction file
        if p.name != f"{VMODEL}_{DATA}.xlsx" and p.is_file():
            p.unlink()
    pred = pred_root / f"{VMODEL}_{DATA}.xlsx"
    pred.write_bytes(b"PK\x03\x04 this is not a spreadsheet any more" * 10)

    with pytest.raises(VLMEvalFailure) as caught:
        pipeline.scoring_step(seeded, run_id, 1)
    assert not caught.value.retryable, "a damaged file does not heal by retrying"
    pipeline.record_task_failure(seeded, run_id, "scoring", caught.value)  # the DAG's on_failure_callback
    run = _run(seeded, run_id)
    assert run.status == "failed" and run.error.startswith("scoring: ")
    assert f"prediction file {pred.name} is unreadable" in run.error and "reuse off" in run.error, run.error
    assert pred.exists() and (artifacts / "worker_stderr.log").stat().st_size > 0, "artifacts kept"
    assert [e.status for e in run.events][-1] == "failed"


@contextlib.contextmanager
def _tiny_filesystem(path: Path, size: str) -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    res = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True, text=True
    )
    if res.returncode != 0:
        why = f"cannot mount a tmpfs at {path}: {res.stderr.strip() or f'mount exited {res.returncode}'}"
        if os.geteuid() == 0:  # CI runs as root: there a failed mount is a broken test, not a missing privilege
            pytest.fail(f"{why} (running as root, so the mount must work: is CAP_SYS_ADMIN dropped?)")
        pytest.skip(f"{why} (needs root / CAP_SYS_ADMIN; running as uid {os.geteuid()})")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


@pytest.mark.parametrize("free_kib", [24, 0])
def test_full_disk_fails_clearly_and_keeps_artifacts(
    seeded, served: ServerHandle, tmp_path: Path, free_kib: int
) -> None:
    run_id = _queue(seeded)
    with _tiny_filesystem(tmp_path / "disk", "256k") as disk:
        artifacts = disk / "runs" / str(run_id)
        artifacts.mkdir(parents=True)
        with session_scope(seeded) as s:
            runs.get_run(s, run_id).artifacts_dir = str(artifacts)
        with contextlib.suppress(OSError):  # fill it up, leaving a few KiB
            (disk / "filler").write_bytes(b"\0" * (256 * 1024 - free_kib * 1024))
        if free_kib == 0:  # not one block left: even the worker logs cannot be written
            with contextlib.suppress(OSError), (disk / "filler2").open("wb") as fh:
                while True:
                    fh.write(b"\0" * 4096)
                    fh.flush()
        thread, box = _in_thread(pipeline.inference_step, seeded, run_id, 1)
        thread.join(180)
        assert not thread.is_alive(), "inference hung on a full disk"
        err = box.get("err")
        assert isinstance(err, VLMEvalFailure | OSError), box  # what the DAG's failure callback records
        pipeline.record_task_failure(seeded, run_id, "inference", err)
        run = _run(seeded, run_id)
        assert run.status == "failed"
        assert "No space left on device" in run.error, run.error
        assert (artifacts / "worker_stderr.log").exists(), "artifacts kept (empty when nothing could be written)"
        assert not (artifacts / "worker.pid").exists()
        assert [e.status for e in run.events] == ["queued", "running", "failed"]


def test_api_failures_are_counted_not_scored_wrong(seeded, served: ServerHandle) -> None:
    limit = 20
    served.set_policy(fail_every=5, fail_mode="500", delay_s=0.0)
    run_id = _queue(seeded, limit=limit, api_retry=1)  # one try per sample: a failed request is a failed sample
    pipeline.inference_step(seeded, run_id, 1)
    failed = served.stats()["failed"]
    assert failed == limit // 5
    pipeline.scoring_step(seeded, run_id, 1)
    pipeline.ingest_step(seeded, run_id)
    run = _run(seeded, run_id)
    assert run.status == "completed", run.error
    assert (run.samples_total, run.samples_failed) == (limit, failed)
    summary = run.metrics["samples"]
    assert (summary["total"], summary["failed"], summary["scored"]) == (limit, failed, limit - failed), summary
    hits = summary["official"] * limit  # failed samples count as wrong in VLMEvalKit's (official) score ...
    assert summary["official"] == pytest.approx(run.primary_metric)
    assert summary["valid_only"] == pytest.approx(hits / (limit - failed)), summary  # ... and are left out here
    with session_scope(seeded) as s:
        flagged = s.scalars(
            select(EvalSample.prediction).where(EvalSample.run_id == run_id, EvalSample.failed.is_(True))
        ).all()
    assert len(flagged) == failed and all("Failed to obtain answer" in p for p in flagged)
