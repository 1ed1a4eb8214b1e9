"""A managed server's life, as its `model_server` task lives it: lease the GPUs, start the engine, tell the runs
where it answers, keep it up (one restart), and stop it when no run needs it, when asked, or when the task ends.

Owns its transactions (takes an Engine): the server's row must be visible to other workers the moment it changes
(runs wait for `ready`, the API shows the state), while the task lives for hours.
"""

from __future__ import annotations

import datetime as dt
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine

from vlmevals.core.settings import Settings
from vlmevals.core.vocabulary import ServerState
from vlmevals.db.engine import session_scope
from vlmevals.gpu import leases as gpus
from vlmevals.serving import registry
from vlmevals.serving.engines import EngineError, EngineLaunch, engine_version, launch
from vlmevals.serving.process import EngineStartError, ManagedServer, free_port, start
from vlmevals.vlmevalkit.runner import sigterm_exits

log = logging.getLogger(__name__)

TERM_GRACE_S = 2.0  # Airflow SIGKILLs a task a few seconds after its SIGTERM: stop the engine before that


class ServerFailed(RuntimeError):
    """The server could not be kept up; the message is what the runs waiting on it report."""


@dataclass(frozen=True)
class ServerPlan:
    """What the task needs to run server `server_id` (read from its row and the model by the pipeline)."""

    server_id: int
    engine: str
    args: tuple[str, ...]
    gpus: int
    weights: str
    served_model_name: str
    startup_timeout_s: float
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)


def advertised_host(settings: Settings) -> str:
    """The host other workers reach the engine by."""
    if settings.serve_advertise_host:
        return settings.serve_advertise_host
    return socket.getfqdn() if settings.serve_host in ("0.0.0.0", "::") else settings.serve_host


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _launch(plan: ServerPlan, settings: Settings) -> EngineLaunch:
    return launch(
        plan.engine,
        weights=plan.weights,
        served_model_name=plan.served_model_name,
        gpus=max(1, plan.gpus),
        host=settings.serve_host,
        port=free_port(settings.serve_host),
        args=plan.args,
        settings=settings,
    )


def _start(engine: Engine, plan: ServerPlan, settings: Settings, env: dict[str, str], devices: str) -> ManagedServer:
    """One engine start (one load of the weights), recorded; EngineStartError names the command and log."""
    how = _launch(plan, settings)
    version = engine_version(plan.engine, settings)
    with session_scope(engine) as s:
        registry.record_launch(
            s, plan.server_id, command=how.command_line(), engine_version=version, log_path=str(plan.log_path)
        )
    server = start(how, plan.log_path, startup_timeout_s=plan.startup_timeout_s, env={**plan.env, **env})
    host = advertised_host(settings)
    with session_scope(engine) as s:
        registry.mark_ready(
            s,
            plan.server_id,
            host=host,
            port=how.port,
            base_url=f"http://{host}:{how.port}/v1",
            pid=server.pid,
            devices=devices,
        )
    log.info("model server %s ready: %s (pid %s)", plan.server_id, how.base_url, server.pid)
    return server


STOPPED_BY_AIRFLOW = (
    "its model_server task was stopped by Airflow (marked failed or success, timed out, or the stack stopped)"
)


def _mark_over(engine: Engine, server_id: int, state: ServerState, reason: str) -> None:
    with session_scope(engine) as s:
        registry.mark_over(s, server_id, state, reason)


def serve(
    engine: Engine,
    plan: ServerPlan,
    settings: Settings,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Run the server until it stops; returns why. Raises ServerFailed when it could not start or died twice."""
    holder = f"model server {plan.server_id}"
    state, reason = ServerState.FAILED, "its task ended before the engine stopped"
    live: dict[str, ManagedServer] = {}  # the engine running now (a restart replaces it)
    try:
        with sigterm_exits(), gpus.leased(engine, plan.gpus, holder=holder, settings=settings.gpu) as lease:
            env, devices = lease.env(), lease.cuda_visible_devices
            try:
                live["engine"] = _start(engine, plan, settings, env, devices)
            except (EngineStartError, EngineError) as err:
                reason = str(err)
                raise ServerFailed(reason) from err
            state, reason = _watch(engine, plan, settings, live, lease.heartbeat, env, devices, sleep)
            live.pop("engine").stop()
    except (SystemExit, KeyboardInterrupt):
        # Airflow SIGKILLs the task 5 s after its SIGTERM: say why first, then stop the engine quickly
        state, reason = ServerState.FAILED, STOPPED_BY_AIRFLOW
        _mark_over(engine, plan.server_id, state, reason)
        if "engine" in live:
            live.pop("engine").stop(grace_s=TERM_GRACE_S)
        raise
    finally:
        if "engine" in live:  # an unexpected error: no engine outlives its task
            live.pop("engine").stop()
        _mark_over(engine, plan.server_id, state, reason)
    if state == ServerState.FAILED:
        raise ServerFailed(reason)
    return reason


def _watch(
    engine: Engine,
    plan: ServerPlan,
    settings: Settings,
    live: dict[str, ManagedServer],
    beat: Callable[[], None],
    env: dict[str, str],
    devices: str,
    sleep: Callable[[float], None],
) -> tuple[ServerState, str]:
    """Heartbeat, restart a dead engine once (`live` holds the one running), and stop when `stop_reason` says so."""
    restarted = False
    while True:
        beat()
        current = live["engine"]
        if not current.alive():
            why = f"engine {plan.engine} (pid {current.pid}) exited with status {current.process.poll()}"
            if restarted:
                return ServerState.FAILED, f"{why} again after one restart; log: {plan.log_path}"
            log.warning("model server %s: %s; restarting it once", plan.server_id, why)
            with session_scope(engine) as s:
                registry.mark_restarting(s, plan.server_id, why)
            live.pop("engine").stop(grace_s=1.0)
            restarted = True
            try:
                live["engine"] = _start(engine, plan, settings, env, devices)
            except (EngineStartError, EngineError) as err:
                return ServerState.FAILED, f"{why}; the restart failed: {err}"
            continue
        with session_scope(engine) as s:
            reason = registry.stop_reason(s, plan.server_id, _now())
        if reason is not None:
            log.info("model server %s stopping: %s", plan.server_id, reason)
            return ServerState.STOPPED, reason
        sleep(settings.server_poll_s)
