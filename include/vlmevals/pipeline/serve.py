"""Managed serving in an evaluation: which server a run needs, running that server (the `model_server` DAG's
task), a run waiting for it (a reschedule-mode sensor), and inference against it.

A served model's runs never load the weights themselves: the first run that needs the (model, checkpoint) requests
a server, every run joins the live one, and each sends its requests concurrently (continuous batching in the engine).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from vlmevals.catalogue.schemas.serve import ServeSpec
from vlmevals.catalogue.specs import model_spec
from vlmevals.core.constants import SERVED_INFERENCE_TASK_ID
from vlmevals.core.errors import InvalidRequestError, VLMEvalFailure
from vlmevals.core.settings import Settings
from vlmevals.core.vocabulary import LIVE_SERVER_STATES, ServerState
from vlmevals.db.engine import session_scope
from vlmevals.db.models import Checkpoint, EvalRun, Model, ModelServer
from vlmevals.gpu.leases import node_name, release_holder
from vlmevals.gpu.slots import slots_for
from vlmevals.runs import lifecycle as runs
from vlmevals.serving import registry
from vlmevals.serving.supervisor import ServerPlan, serve
from vlmevals.vlmevalkit import hub
from vlmevals.vlmevalkit.command import ModelSpec, expand_paths
from vlmevals.vlmevalkit.runner import AbortRun, group_alive, kill_groups

log = logging.getLogger(__name__)

# the eval_run tasks a served run takes instead of in-process inference: trigger the server's DAG run (skipped when
# it exists), wait for the server without holding a slot, send the requests
SERVED_BRANCH = ("start_server", "wait_for_server", SERVED_INFERENCE_TASK_ID)


def servers_dir(settings: Settings) -> Path:
    return settings.outputs_dir / "servers"


def weights_of(model: ModelSpec, settings: Settings) -> str:
    """The folder (or Hub snapshot the queue step fetched) the engine loads: the model's, or its checkpoint's."""
    offline, _ = hub.offline_model(model, settings)
    spec = expand_paths(offline.model_spec or {}, settings)
    return str(spec.get("model_path") or spec.get("model") or "")


def server_request(run: EvalRun, model: ModelSpec, settings: Settings) -> registry.ServerRequest | None:
    """What a run of a served model asks for; None for a model the service does not serve."""
    if run.model.serve is None:
        return None
    spec = ServeSpec.model_validate(run.model.serve)
    linger = 0.0 if run.batched else spec.idle_timeout_s  # a suite's or checkpoint's runs: stop after them
    return registry.ServerRequest(
        model_id=run.model_id,
        checkpoint_id=run.checkpoint_id,
        engine=spec.engine,
        args=tuple(spec.args),
        gpus=int(spec.gpus or model.gpus or 1),
        linger_s=linger,
        startup_timeout_s=spec.startup_timeout_s,
        weights=str(expand_paths((model.model_spec or {}).get("model_path"), settings) or "") or None,
        served_model_name=model.vlmeval_model,
    )


def join_server(engine: Engine, run_id: int, model: ModelSpec, settings: Settings) -> dict[str, Any] | None:
    """The queue step's part: the run joins the live server of its (model, checkpoint) or requests one.
    Returns what the DAG needs to trigger the server's DAG run (idempotent: one DAG run per server)."""
    with session_scope(engine) as s:
        run = runs.get_run(s, run_id)
        req = server_request(run, model, settings)
        if req is None:
            return None
        server, created = registry.join_or_request(s, req, run_id)
        info = {"server_id": server.id, "server_dag_run_id": server.dag_run_id, "server_created": created}
    log.info("eval run %s %s model server %s", run_id, "requested" if created else "joins", info["server_id"])
    return info


def _plan(server: ModelServer, model: ModelSpec, settings: Settings) -> ServerPlan:
    # the creation time too: ids restart with a new database, an engine log must not be appended to another's
    log_path = servers_dir(settings) / f"server-{server.id}-{server.created_at:%Y%m%dT%H%M%S}" / "engine.log"
    return ServerPlan(
        server_id=server.id,
        engine=server.engine,
        args=tuple(server.args or ()),
        gpus=server.gpus,
        weights=weights_of(model, settings),
        served_model_name=server.served_model_name,
        startup_timeout_s=server.startup_timeout_s,
        log_path=log_path,
        env=dict(hub.OFFLINE_ENV),  # the queue step fetched Hub weights; engines must not reach the Hub
    )


def serve_step(engine: Engine, server_id: int, dag_run_id: str | None, settings: Settings) -> str:
    """The `model_server` task: run the server until it stops (returns why); a server that cannot start or keep
    running raises ServerFailed after its row says why (the runs waiting on it fail with that reason)."""
    with session_scope(engine) as s:
        server = registry.claim(s, server_id, worker=node_name(), dag_run_id=dag_run_id)
        if server is None:
            return f"model server {server_id} was stopped before it started"
        checkpoint = s.get(Checkpoint, server.checkpoint_id) if server.checkpoint_id else None
        plan = _plan(server, model_spec(s.get_one(Model, server.model_id), checkpoint), settings)
    return serve(engine, plan, settings)


def server_id_from(conf: dict[str, Any]) -> int:
    """The server a `model_server` DAG run serves (its conf, rendered by the triggering run as text)."""
    raw = conf.get("server_id")
    try:
        return int(str(raw))
    except ValueError:
        raise InvalidRequestError(
            f"model_server needs conf server_id (got {raw!r}); its DAG runs are started by the eval runs of a "
            "served model, not by hand: trigger eval_run (or a suite) for a model with a `serve` spec"
        ) from None


def serve_slots(engine: Engine, server_id: int) -> int:
    """Pool slots the server's task holds: its GPUs, rounded up to a bucket."""
    with session_scope(engine) as s:
        return slots_for(registry.get_server(s, server_id).gpus)


def server_ready(engine: Engine, run_id: int) -> bool:
    """The run's wait (a reschedule-mode sensor, holding no slot between pokes): True once its server answers;
    a server that failed or stopped fails the run, naming the engine, its command line and its log's tail."""
    with session_scope(engine) as s:
        run = runs.get_run(s, run_id)
        if run.server_id is None:
            raise VLMEvalFailure(f"eval run {run_id} has no model server (its model is not served)")
        server = registry.get_server(s, run.server_id)
        if server.state == ServerState.READY:
            return True
        if server.state in LIVE_SERVER_STATES:
            return False
        raise VLMEvalFailure(server_gone(server))


def server_gone(server: ModelServer) -> str:
    return f"model server {server.id} ({server.engine}) is {server.state}: {server.reason or 'no reason recorded'}" + (
        f"\ncommand: {server.command}" if server.command and server.command not in (server.reason or "") else ""
    )


@dataclass(frozen=True)
class ServedEndpoint:
    """A plain copy of a ready server, for the run that sends its requests to it."""

    id: int
    base_url: str
    engine: str
    engine_version: str | None
    args: tuple[str, ...]
    served_model_name: str
    log_path: str | None

    @property
    def fingerprint(self) -> dict[str, Any]:
        """The fingerprint's `serving` part: what answered (hashed, so another engine or version is drift)."""
        return {"engine": self.engine, "version": self.engine_version, "args": list(self.args)}


def await_server(engine: Engine, run_id: int, settings: Settings) -> ServedEndpoint:
    """The run's ready server; while it restarts (state starting) wait up to its start-up timeout."""
    deadline: float | None = None
    while True:
        with session_scope(engine) as s:
            run = runs.get_run(s, run_id)
            server = registry.get_server(s, run.server_id) if run.server_id else None
            if server is None:
                raise VLMEvalFailure(f"eval run {run_id} has no model server; trigger it again", retryable=False)
            if server.state == ServerState.READY and server.base_url:
                return ServedEndpoint(
                    server.id,
                    server.base_url,
                    server.engine,
                    server.engine_version,
                    tuple(server.args or ()),
                    server.served_model_name,
                    server.log_path,
                )
            if server.state not in LIVE_SERVER_STATES:
                raise VLMEvalFailure(server_gone(server))
            timeout = server.startup_timeout_s
        deadline = deadline or time.monotonic() + timeout
        if time.monotonic() > deadline:
            raise VLMEvalFailure(f"model server {server.id} did not become ready within {timeout:g} s", retryable=True)
        time.sleep(settings.server_poll_s)


def served_model(model: ModelSpec, server: ServedEndpoint, settings: Settings) -> ModelSpec:
    """The model as VLMEvalKit calls it: its OpenAI-compatible client (class LMDeployAPI) on the server, given as a
    `--config` entry so the task's dataset class still applies, answering as long as the in-process model would
    (`max_new_tokens` of its spec; VLMEvalKit's own default asks for 32768 tokens)."""
    spec = model.model_spec or {}
    client: dict[str, Any] = {
        "class": "LMDeployAPI",
        "model": server.served_model_name,
        "api_base": f"{server.base_url.rstrip('/')}/chat/completions",
        "key": "sk-none",
        "temperature": 0.0,
    }
    if isinstance(spec.get("max_new_tokens"), int):
        client["max_tokens"] = spec["max_new_tokens"]
    return replace(
        model,
        model_spec=client,
        endpoint_base_url=server.base_url,
        endpoint_key_env=None,
        vlmeval_model=server.served_model_name,
        api_nproc=model.api_nproc or settings.serve_api_nproc,
        launch_mode="single",
    )


def server_watch(engine: Engine, server_id: int) -> Callable[[], None]:
    """A progress tick that ends VLMEvalKit's process at once when the server stopped or failed: its requests
    would only fail, and each failed answer costs VLMEvalKit's retries."""

    def check() -> None:
        with session_scope(engine) as s:
            server = registry.get_server(s, server_id)
            if server.state in LIVE_SERVER_STATES:
                return
            message = server_gone(server)
        raise AbortRun(message)

    return check


def finalize_server(engine: Engine, server_id: int, why: str | None, wait_s: float = 20.0) -> dict[str, Any]:
    """The `model_server` teardown: no server row stays live, no engine runs and no GPU stays leased after its DAG
    run, however its task ended. Mark failed/success reaches the task only at its next heartbeat, while Airflow
    may start this teardown at once: give the task `wait_s` to stop the engine and say why itself."""
    deadline = time.monotonic() + wait_s
    while True:
        with session_scope(engine) as s:
            server = registry.get_server(s, server_id)
            over = server.state in (ServerState.STOPPED, ServerState.FAILED)
            pid, worker = server.pid, server.worker
        if over or time.monotonic() >= deadline:
            break
        time.sleep(0.5)
    if not over:
        with session_scope(engine) as s:
            registry.mark_over(
                s, server_id, ServerState.FAILED, why or "its model_server task ended (killed) without stopping it"
            )
    if pid and worker == node_name() and group_alive(pid):
        kill_groups({pid}, 5.0)
    freed = release_holder(engine, f"model server {server_id}")
    with session_scope(engine) as s:
        server = registry.get_server(s, server_id)
        served = registry.served_runs(s, server_id)
        return {**registry.describe(server), "runs": served, "freed_gpus": freed}


def reap_stale_servers(
    engine: Engine, settings: Settings, *, this_node_restarting: bool, why: str = "its task is gone"
) -> list[int]:
    """Servers whose task is gone (no heartbeat; or, when this node's stack starts again, every one it ran) are
    marked failed and their engine's process group is ended, so no engine outlives the stack."""
    me = node_name()
    with session_scope(engine) as s:
        stale = registry.stale_servers(s, stale_s=settings.server_stale_s, worker=me if this_node_restarting else None)
        pids = {srv.pid for srv in stale if srv.pid and srv.worker == me}
        for srv in stale:
            registry.mark_over(s, srv.id, ServerState.FAILED, f"{why} (no task serves it any more)")
        ids = [srv.id for srv in stale]
    if pids:
        kill_groups({p for p in pids if group_alive(p)}, 5.0)
    return ids
