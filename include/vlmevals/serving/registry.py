"""The `model_servers` rows: who needs a server, which one is live, and when it may stop.

Every function works inside the caller's transaction. Joining a server and deciding to stop it lock the same row
(`FOR UPDATE`), so a run never joins a server in the instant it is being stopped: the run that loses the race
finds no live server and requests a new one.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from vlmevals.core.constants import MODEL_SERVER_DAG_ID
from vlmevals.core.errors import NotFoundError
from vlmevals.core.vocabulary import ACTIVE_STATUSES, LIVE_SERVER_STATES, ServerState
from vlmevals.db.models import Checkpoint, EvalRun, Model, ModelServer
from vlmevals.serving.schemas import ServerPublic, server_public


@dataclass(frozen=True)
class ServerRequest:
    """What a run asks for: the model's weights served by an engine (from the model's `serve` spec)."""

    model_id: int
    checkpoint_id: int | None
    engine: str
    args: tuple[str, ...]
    gpus: int
    linger_s: float
    startup_timeout_s: float
    weights: str | None
    served_model_name: str


def server_dag_run_id(server_id: int, at: dt.datetime | None = None) -> str:
    """The one `model_server` DAG run of a server: every run that needs it may trigger it, Airflow keeps one.
    Unique even when our ids restart (a reset database) while Airflow's history stays."""
    at = at or dt.datetime.now(dt.UTC)
    return f"server-{server_id}__{at:%Y%m%dT%H%M%S}_{secrets.token_hex(3)}"


def _live(session: Session, model_id: int, checkpoint_id: int | None) -> ModelServer | None:
    return session.scalars(
        select(ModelServer)
        .where(
            ModelServer.model_id == model_id,
            func.coalesce(ModelServer.checkpoint_id, 0) == (checkpoint_id or 0),
            ModelServer.state.in_(LIVE_SERVER_STATES),
        )
        .with_for_update()
    ).first()


def join_or_request(session: Session, req: ServerRequest, run_id: int) -> tuple[ModelServer, bool]:
    """The live server of the run's (model, checkpoint), or a new one requested for it; True when new.
    The run is attached to it (`eval_runs.server_id`)."""
    created = False
    server = _live(session, req.model_id, req.checkpoint_id)
    while server is None:
        try:
            with session.begin_nested():  # the one-live-server index refuses a second concurrent request
                server = ModelServer(
                    model_id=req.model_id,
                    checkpoint_id=req.checkpoint_id,
                    state=ServerState.STARTING,
                    engine=req.engine,
                    args=list(req.args),
                    gpus=req.gpus,
                    linger_s=req.linger_s,
                    startup_timeout_s=req.startup_timeout_s,
                    weights=req.weights,
                    served_model_name=req.served_model_name,
                    dag_id=MODEL_SERVER_DAG_ID,
                    requested_by_run_id=run_id,
                )
                session.add(server)
                session.flush()
                server.dag_run_id = server_dag_run_id(server.id)
                created = True
        except IntegrityError:
            server = _live(session, req.model_id, req.checkpoint_id)
    session.execute(update(EvalRun).where(EvalRun.id == run_id).values(server_id=server.id))
    return server, created


def get_server(session: Session, server_id: int, *, lock: bool = False) -> ModelServer:
    query = select(ModelServer).where(ModelServer.id == server_id)
    server = session.scalars(query.with_for_update() if lock else query).first()
    if server is None:
        raise NotFoundError(f"model server {server_id} not found (GET /api/evals/servers lists them)")
    return server


def needing_runs(session: Session, server: ModelServer) -> int:
    """Queued or running runs that need this server: attached to it, or of its (model, checkpoint) and not yet
    attached (a suite's runs are recorded together but reach their queue step one by one)."""
    return int(
        session.scalar(
            select(func.count()).where(
                EvalRun.status.in_(ACTIVE_STATUSES),
                or_(
                    EvalRun.server_id == server.id,
                    (EvalRun.server_id.is_(None))
                    & (EvalRun.model_id == server.model_id)
                    & (func.coalesce(EvalRun.checkpoint_id, 0) == (server.checkpoint_id or 0)),
                ),
            )
        )
        or 0
    )


def served_requests(session: Session, server_ids: list[int]) -> dict[int, int]:
    """Samples answered through each server (its runs' progress): what it served."""
    rows = session.execute(
        select(EvalRun.server_id, func.coalesce(func.sum(EvalRun.progress_done), 0))
        .where(EvalRun.server_id.in_(server_ids))
        .group_by(EvalRun.server_id)
    ).all()
    return {int(sid): int(n) for sid, n in rows if sid is not None}


def served_runs(session: Session, server_id: int) -> list[tuple[int, str]]:
    """(run id, status) of the runs sent to a server, for its DAG run note."""
    rows = session.execute(
        select(EvalRun.id, EvalRun.status).where(EvalRun.server_id == server_id).order_by(EvalRun.id)
    ).all()
    return [(int(i), str(st)) for i, st in rows]


def claim(session: Session, server_id: int, *, worker: str, dag_run_id: str | None) -> ModelServer | None:
    """Its task takes the server on; None when it is no longer starting (stopped before its task ran)."""
    server = get_server(session, server_id, lock=True)
    if server.state != ServerState.STARTING:
        return None
    server.worker, server.started_at, server.heartbeat_at = worker, func.now(), func.now()
    if dag_run_id:
        server.dag_run_id = dag_run_id
    return server


def record_launch(session: Session, server_id: int, *, command: str, engine_version: str, log_path: str) -> None:
    server = get_server(session, server_id)
    server.command, server.engine_version, server.log_path = command, engine_version, log_path


def mark_ready(
    session: Session, server_id: int, *, host: str, port: int, base_url: str, pid: int, devices: str
) -> None:
    """The engine answers: runs waiting for it may send their requests. Each start is one load of the weights."""
    server = get_server(session, server_id, lock=True)
    server.state = ServerState.READY
    server.host, server.port, server.base_url, server.pid, server.devices = host, port, base_url, pid, devices
    server.loads = (server.loads or 0) + 1
    server.ready_at = server.heartbeat_at = func.now()


def mark_restarting(session: Session, server_id: int, why: str) -> None:
    """The engine died: runs wait (state starting) while the task restarts it once."""
    server = get_server(session, server_id, lock=True)
    server.state = ServerState.STARTING
    server.detail = {**(server.detail or {}), "restarted_because": why[:2000]}


def stop_reason(session: Session, server_id: int, now: dt.datetime) -> str | None:
    """Beat the heartbeat and decide, under the row's lock, whether the server stops now: asked to, or no run has
    needed it for its linger time. A server that stops is marked `stopping` in the same transaction."""
    server = get_server(session, server_id, lock=True)
    server.heartbeat_at = func.now()
    reason: str | None = None
    if server.state not in LIVE_SERVER_STATES:
        reason = server.reason or f"it is {server.state}"
    elif server.stop_requested_by:
        reason = f"stop requested by {server.stop_requested_by}"
    elif needing_runs(session, server) > 0:
        server.idle_since = None
    elif server.idle_since is None:
        server.idle_since = now
        if server.linger_s <= 0:
            reason = "its runs are over"
    elif (now - server.idle_since).total_seconds() >= server.linger_s:
        reason = f"no eval run needed it for {server.linger_s:g} s"
    if reason is not None and server.state in LIVE_SERVER_STATES:
        server.state = ServerState.STOPPING
        server.reason = reason
    return reason


def mark_over(session: Session, server_id: int, state: ServerState, reason: str) -> None:
    """Stopped or failed, with why; a reason already recorded (the stop decision) is kept for a clean stop."""
    server = get_server(session, server_id, lock=True)
    if server.state in (ServerState.STOPPED, ServerState.FAILED):
        return
    server.state = state
    server.reason = reason if state == ServerState.FAILED or not server.reason else server.reason
    server.stopped_at = func.now()


def request_stop(session: Session, server_id: int, who: str) -> ModelServer:
    """Ask a live server to stop (its task stops the engine within a poll); a server that never started stops
    here. Runs still waiting for it fail at inference saying why."""
    server = get_server(session, server_id, lock=True)
    if server.state in LIVE_SERVER_STATES:
        server.stop_requested_by = who[:256]
        if server.state == ServerState.STARTING and server.started_at is None:
            server.state, server.reason, server.stopped_at = ServerState.STOPPED, f"stopped by {who}", func.now()
    return server


def list_servers(session: Session, *, live_only: bool = False, limit: int = 100) -> list[ModelServer]:
    query = select(ModelServer).order_by(ModelServer.id.desc()).limit(limit)
    if live_only:
        query = query.where(ModelServer.state.in_((*LIVE_SERVER_STATES, ServerState.STOPPING)))
    return list(session.scalars(query))


def stale_servers(session: Session, *, stale_s: float, worker: str | None = None) -> list[ModelServer]:
    """Servers not over whose task stopped beating (or, with `worker`, every one that node ran: the stack is
    starting again, so none of its engines can still be served by a task)."""
    cutoff = func.now() - dt.timedelta(seconds=stale_s)
    over = (ServerState.STOPPED, ServerState.FAILED)
    beat = func.coalesce(ModelServer.heartbeat_at, ModelServer.created_at)
    gone = beat < cutoff if worker is None else or_(beat < cutoff, ModelServer.worker == worker)
    return list(session.scalars(select(ModelServer).where(ModelServer.state.not_in(over), gone).with_for_update()))


def public_list(session: Session, servers: list[ModelServer]) -> list[ServerPublic]:
    """The servers as the API shows them, with their model, checkpoint, requests served and runs needing them."""
    served = served_requests(session, [srv.id for srv in servers])
    out = []
    for srv in servers:
        model = session.get_one(Model, srv.model_id)
        cp = session.get(Checkpoint, srv.checkpoint_id) if srv.checkpoint_id else None
        label = (cp.label or (f"step {cp.step}" if cp.step is not None else str(cp.id))) if cp else None
        live = srv.state not in (ServerState.STOPPED, ServerState.FAILED)
        needing = needing_runs(session, srv) if live else 0
        out.append(server_public(srv, model.name, label, served.get(srv.id, 0), needing))
    return out


def describe(server: ModelServer) -> dict[str, Any]:
    """What a DAG run note and logs say about a server."""
    return {
        "id": server.id,
        "engine": server.engine,
        "engine_version": server.engine_version,
        "base_url": server.base_url,
        "state": server.state,
        "loads": server.loads,
        "reason": server.reason,
    }
