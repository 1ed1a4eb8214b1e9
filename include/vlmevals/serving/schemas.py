"""A model server as the API shows it (GET /api/evals/servers, the leaderboard page's servers panel)."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field

from vlmevals.db.models import ModelServer


class ServerPublic(BaseModel):
    id: int
    state: str = Field(description="starting, ready, stopping, stopped or failed")
    model: str
    checkpoint: str | None = Field(description="the checkpoint's label or step; null: the model as registered")
    engine: str
    engine_version: str | None
    args: list[str]
    base_url: str | None = Field(description="the OpenAI-compatible endpoint its runs send requests to")
    gpus: int
    devices: str | None = Field(description="CUDA_VISIBLE_DEVICES of its GPU lease ('' on a CPU worker)")
    worker: str | None
    pid: int | None
    loads: int = Field(description="engine starts: each loaded the weights once")
    requests_served: int = Field(description="samples answered through it (its runs' progress)")
    runs_needing: int = Field(description="queued or running eval runs that need it now")
    idle_since: dt.datetime | None
    created_at: dt.datetime
    started_at: dt.datetime | None
    ready_at: dt.datetime | None
    stopped_at: dt.datetime | None
    reason: str | None = Field(description="why it stopped or failed")
    stop_requested_by: str | None = Field(description="who asked it to stop (POST /api/evals/servers/{id}/stop)")
    command: str | None
    log_path: str | None
    dag_run_id: str | None


class ServerList(BaseModel):
    servers: list[ServerPublic]


def server_public(server: ModelServer, model: str, checkpoint: str | None, served: int, needing: int) -> ServerPublic:
    return ServerPublic(
        id=server.id,
        state=server.state,
        model=model,
        checkpoint=checkpoint,
        engine=server.engine,
        engine_version=server.engine_version,
        args=list(server.args or []),
        base_url=server.base_url,
        gpus=server.gpus,
        devices=server.devices,
        worker=server.worker,
        pid=server.pid,
        loads=server.loads,
        requests_served=served,
        runs_needing=needing,
        idle_since=server.idle_since,
        created_at=server.created_at,
        started_at=server.started_at,
        ready_at=server.ready_at,
        stopped_at=server.stopped_at,
        reason=server.reason,
        stop_requested_by=server.stop_requested_by,
        command=server.command,
        log_path=server.log_path,
        dag_run_id=server.dag_run_id,
    )
