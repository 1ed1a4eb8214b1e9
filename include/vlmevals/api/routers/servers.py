"""Managed model servers: what runs, for which model and checkpoint, and stopping one.

Reading is open to any authenticated user (viewers included); stopping needs the trigger permission, like
cancelling a run: the runs still using the server fail at inference saying who stopped it.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from vlmevals.api.deps import CanTrigger, SessionDep, UserDep, user_name
from vlmevals.api.errors import responses
from vlmevals.db.engine import get_engine, session_scope
from vlmevals.serving import registry
from vlmevals.serving.schemas import ServerList, ServerPublic

router = APIRouter(prefix="/servers", tags=["servers"])
ServerId = Annotated[int, Path(ge=1, le=2**63 - 1, description="model server id")]


@router.get("", response_model=ServerList, responses=responses(401, 403, 422))
def list_servers(
    session: SessionDep,
    live: Annotated[bool, Query(description="only servers starting, ready or stopping")] = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> ServerList:
    """Newest first: state, model, checkpoint, engine, endpoint, GPUs, started, requests served, idle since."""
    servers = registry.list_servers(session, live_only=live, limit=limit)
    return ServerList(servers=registry.public_list(session, servers))


@router.get("/{server_id}", response_model=ServerPublic, responses=responses(401, 403, 404, 422))
def get_server(session: SessionDep, server_id: ServerId) -> ServerPublic:
    return registry.public_list(session, [registry.get_server(session, server_id)])[0]


@router.post(
    "/{server_id}/stop", response_model=ServerPublic, dependencies=[CanTrigger], responses=responses(401, 403, 404, 422)
)
def stop_server(server_id: ServerId, user: UserDep) -> ServerPublic:
    """Ask the server to stop: its task stops the engine within a poll and releases the GPUs; a server that is
    over already is returned as it is."""
    with session_scope(get_engine()) as s:
        registry.request_stop(s, server_id, f"user {user_name(user)} (POST /api/evals/servers/{server_id}/stop)")
    with session_scope(get_engine()) as s:
        return registry.public_list(s, [registry.get_server(s, server_id)])[0]
