"""Managed serving without Airflow: the queue step joins or requests a server, the server's task runs a stand-in
engine (each engine's documented command line, the OpenAI protocol), runs wait for it, real VLMEvalKit sends its
requests, and the server stops when no run needs it, leaving no lease and no process."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import IntegrityError
from vlmevals.core.errors import VLMEvalFailure
from vlmevals.core.settings import Settings, get_settings
from vlmevals.db.engine import session_scope
from vlmevals.db.models import EvalRun, GpuLease, Model, ModelServer
from vlmevals.pipeline import serve
from vlmevals.pipeline.inference import served_inference_step
from vlmevals.pipeline.queue import queue_step
from vlmevals.serving import registry
from vlmevals.serving.supervisor import ServerFailed
from vlmevals.vlmevalkit.runner import group_alive

pytestmark = pytest.mark.integration
DEMO = "demo-tiny-idefics3"
TASKS = ("demo-shapes-mcq", "demo-colors-vqa")


def _settings(standin_bin: Path, engine: str) -> Settings:
    return get_settings().model_copy(
        update={f"engine_python_{engine}": str(standin_bin / "python"), "server_poll_s": 0.2}
    )


def _served_model(engine: Engine, name: str, serve_spec: dict[str, Any]) -> str:
    with session_scope(engine) as s:
        demo = s.scalars(select(Model).where(Model.name == DEMO)).one()
        s.add(
            Model(
                name=name,
                display_name=name,
                vlmeval_model=f"Served{demo.vlmeval_model}",
                model_spec=demo.model_spec,
                gpus=1,
                launch_mode="single",
                serve={"startup_timeout_s": 30, "idle_timeout_s": 600, **serve_spec},
            )
        )
    return name


def _queue(engine: Engine, task: str, model: str, settings: Settings, limit: int = 6) -> dict[str, Any]:
    return queue_step(
        engine,
        {"task": task, "model": model, "limit": limit},
        dag_id="eval_run",
        dag_run_id=f"t__{time.time_ns()}",
        run_type="manual",
        user=None,
        settings=settings,
    )


class ServerThread:
    """The model_server task, run in a thread (its SIGTERM handling is the main thread's only)."""

    def __init__(self, engine: Engine, server_id: int, settings: Settings) -> None:
        self.result: str | BaseException | None = None

        def run() -> None:
            try:
                self.result = serve.serve_step(engine, server_id, f"server-{server_id}", settings)
            except BaseException as err:
                self.result = err

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def join(self, timeout: float = 60) -> str | BaseException | None:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the server task did not end"
        return self.result


def _until(check: Callable[[], bool], timeout: float = 60, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def _server(engine: Engine, server_id: int) -> ModelServer:
    with session_scope(engine) as s:
        srv = registry.get_server(s, server_id)
        s.expunge(srv)
    return srv


def _leases(engine: Engine) -> list[tuple[int, str | None]]:
    with session_scope(engine) as s:
        return [(d, h) for d, h in s.execute(select(GpuLease.device, GpuLease.holder)) if h]


@pytest.fixture()
def no_leftovers(seeded: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """One (pretend) GPU, so servers take real lease rows; none may be left held."""
    monkeypatch.setenv("EVALS_GPUS", "0")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
    assert _leases(seeded) == [], "a GPU lease outlived its server"


@pytest.mark.parametrize("engine_name", ["vllm", "sglang", "lmdeploy"])
def test_two_runs_share_one_server_that_stops_when_they_are_over(
    engine_name: str, seeded: Engine, demo_assets: Any, standin_bin: Path, no_leftovers: None
) -> None:
    settings = _settings(standin_bin, engine_name)
    model = _served_model(seeded, f"served-{engine_name}", {"engine": engine_name, "idle_timeout_s": 0.5})
    first = _queue(seeded, TASKS[0], model, settings)
    second = _queue(seeded, TASKS[1], model, settings)
    assert first["branch"] == list(serve.SERVED_BRANCH) and first["server_created"]
    assert second["server_id"] == first["server_id"] and not second["server_created"], "runs share the live server"
    sid = first["server_id"]
    assert not serve.server_ready(seeded, first["eval_run_id"]), "not ready before its task starts it"

    task = ServerThread(seeded, sid, settings)
    _until(lambda: serve.server_ready(seeded, first["eval_run_id"]), what="server ready")
    assert _leases(seeded) == [(0, f"{os.uname().nodename}|model server {sid}")], "the server holds the GPU"
    outs: dict[int, Any] = {}
    threads = [
        threading.Thread(target=lambda r=r: outs.update({r: served_inference_step(seeded, r, 1, settings)}))
        for r in (first["eval_run_id"], second["eval_run_id"])
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    assert len(outs) == 2, "both runs finished inference"
    reason = task.join()
    assert reason == "no eval run needed it for 0.5 s", reason

    srv = _server(seeded, sid)
    assert (srv.state, srv.loads, srv.engine_version) == ("stopped", 1, "0.0.1+standin")
    assert srv.pid is not None and not group_alive(srv.pid), "the engine's group is gone"
    assert Path(srv.log_path or "").read_text().count("Loading ") == 1, "one load of the weights for both runs"
    with session_scope(seeded) as s:
        for info in (first, second):
            run = s.get_one(EvalRun, info["eval_run_id"])
            assert run.status == "completed" and run.progress_done == 6, (run.status, run.error)
            assert run.fingerprint["serving"] == {"engine": engine_name, "version": "0.0.1+standin", "args": []}
            assert run.fingerprint["concurrency"]["endpoint"] == srv.base_url
            assert run.server_id == sid
        assert registry.served_requests(s, [sid]) == {sid: 12}


def test_an_engine_that_cannot_start_fails_its_runs_naming_command_and_log(
    seeded: Engine, demo_assets: Any, standin_bin: Path, no_leftovers: None
) -> None:
    settings = _settings(standin_bin, "vllm")
    model = _served_model(seeded, "served-bad-arg", {"engine": "vllm", "args": ["--no-such-flag"]})
    info = _queue(seeded, TASKS[0], model, settings)
    failed = ServerThread(seeded, info["server_id"], settings).join()
    assert isinstance(failed, ServerFailed), failed
    with pytest.raises(VLMEvalFailure) as err:
        serve.server_ready(seeded, info["eval_run_id"])
    message = str(err.value)
    assert f"model server {info['server_id']} (vllm) is failed: engine vllm exited with status 2" in message
    assert "command: " in message and "serve" in message and "--no-such-flag" in message
    assert "unrecognized arguments: --no-such-flag" in message, "the log's tail names the bad argument"


def test_a_killed_engine_is_restarted_once_and_the_run_resumes(
    seeded: Engine, demo_assets: Any, standin_bin: Path, no_leftovers: None
) -> None:
    settings = _settings(standin_bin, "lmdeploy")
    model = _served_model(seeded, "served-killed", {"engine": "lmdeploy", "args": ["--answer-seconds", "0.3"]})
    info = _queue(seeded, TASKS[0], model, settings, limit=16)
    sid, run_id = info["server_id"], info["eval_run_id"]
    task = ServerThread(seeded, sid, settings)
    _until(lambda: serve.server_ready(seeded, run_id), what="server ready")
    first_pid = _server(seeded, sid).pid
    assert first_pid is not None
    killer = threading.Timer(2.0, lambda: os.killpg(first_pid, signal.SIGKILL))
    killer.start()
    with pytest.raises(VLMEvalFailure) as err:  # answers lost with the engine: the task's retry asks again
        served_inference_step(seeded, run_id, 1, settings.model_copy(update={"api_nproc_default": 2}))
    assert err.value.retryable and "failed" in str(err.value)
    _until(lambda: _server(seeded, sid).state == "ready" and _server(seeded, sid).pid != first_pid, what="restart")
    served_inference_step(seeded, run_id, 2, settings)
    srv = _server(seeded, sid)
    assert srv.loads == 2 and "restarted_because" in srv.detail
    with session_scope(seeded) as s:
        run = s.get_one(EvalRun, run_id)
        assert run.status == "completed" and run.progress_done == 16, (run.status, run.error)
    os.killpg(srv.pid or 0, signal.SIGKILL)  # a second death: the server fails, no third load
    result = task.join()
    assert isinstance(result, ServerFailed) and "again after one restart" in str(result), result
    assert _server(seeded, sid).loads == 2


def test_stop_through_the_api_call_and_a_stale_server_reaped(
    seeded: Engine, demo_assets: Any, standin_bin: Path, no_leftovers: None
) -> None:
    settings = _settings(standin_bin, "transformers")
    model = _served_model(seeded, "served-stopped", {"engine": "transformers", "args": ["--answer-seconds", "0.5"]})
    info = _queue(seeded, TASKS[0], model, settings)
    sid = info["server_id"]
    task = ServerThread(seeded, sid, settings)
    _until(lambda: serve.server_ready(seeded, info["eval_run_id"]), what="server ready")

    def stop() -> None:
        with session_scope(seeded) as s:
            registry.request_stop(s, sid, "user alice")

    threading.Timer(3.0, stop).start()  # while the run's requests are in flight (each answer takes 0.5 s)
    with pytest.raises(
        VLMEvalFailure, match=r"inference stopped: model server .* is (stopping|stopped): stop requested"
    ):
        served_inference_step(seeded, info["eval_run_id"], 1, settings.model_copy(update={"serve_api_nproc": 1}))
    assert task.join() == "stop requested by user alice"
    with pytest.raises(VLMEvalFailure, match="is stopped: stop requested by user alice"):
        serve.server_ready(seeded, info["eval_run_id"])
    # a server whose task vanished (the stack was killed): its row is failed and its engine ended on `vlmevals up`
    with session_scope(seeded) as s:
        s.execute(text("UPDATE eval_runs SET status = 'failed' WHERE id = :r"), {"r": info["eval_run_id"]})
    again = _queue(seeded, TASKS[1], model, settings)
    orphan = os.fork()
    if orphan == 0:  # an "engine" in its own group, left behind
        os.setsid()
        time.sleep(60)
        os._exit(0)
    with session_scope(seeded) as s:
        srv = registry.claim(s, again["server_id"], worker=os.uname().nodename, dag_run_id=None)
        assert srv is not None
        srv.pid = orphan
    reaped = serve.reap_stale_servers(seeded, settings, this_node_restarting=True, why="the stack started again")
    assert again["server_id"] in reaped
    _until(lambda: os.waitpid(orphan, os.WNOHANG)[0] == orphan, timeout=15, what="orphan engine ended")
    srv = _server(seeded, again["server_id"])
    assert srv.state == "failed" and srv.reason == "the stack started again (no task serves it any more)"


def test_one_live_server_per_model_and_checkpoint_is_a_database_rule(seeded: Engine, demo_assets: Any) -> None:
    model = _served_model(seeded, "served-unique", {"engine": "vllm"})
    with session_scope(seeded) as s:
        model_id = s.scalars(select(Model.id).where(Model.name == model)).one()
    row = {"model_id": model_id, "engine": "vllm", "linger_s": 1, "startup_timeout_s": 1, "served_model_name": "x"}
    with session_scope(seeded) as s:
        s.add(ModelServer(**row))
    with pytest.raises(IntegrityError, match="uq_model_servers_one_live"), session_scope(seeded) as s:
        s.add(ModelServer(**row))
    with session_scope(seeded) as s:  # once over, another may start
        s.execute(text("UPDATE model_servers SET state = 'stopped' WHERE model_id = :m"), {"m": model_id})
        s.add(ModelServer(**row))
