"""The evals API app factory. The plugin mounts `create_app()` at /api/evals inside Airflow's api-server.

Routers are included from ROUTERS, in one place: adding one (enrolments, samples, compare, ...) is one line.
Every route needs an Airflow-authenticated user (Bearer JWT from POST /auth/token, or the UI's `_token`
cookie), including the OpenAPI document and the page; writes additionally need the right to trigger eval_run.
"""

from __future__ import annotations

import copy
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse

from vlmevals.airflow.auth import requires_authenticated
from vlmevals.api import errors
from vlmevals.api.represent import api_root
from vlmevals.api.routers import artifacts, checkpoints, leaderboard, models, runs, tasks, ui
from vlmevals.api.routers import checkpoint_scores as checkpoint_scores_api
from vlmevals.api.routers import compare as compare_api
from vlmevals.api.routers import enrolments as enrolments_api
from vlmevals.api.routers import exports as exports_api
from vlmevals.api.routers import pages as trust_pages
from vlmevals.api.routers import samples as samples_api
from vlmevals.api.routers import servers as servers_api
from vlmevals.api.routers import suites as suites_api

ROUTERS: list[APIRouter] = [
    tasks.router,
    models.router,
    runs.router,
    leaderboard.router,
    artifacts.router,
    ui.router,
    samples_api.router,
    compare_api.router,
    trust_pages.router,
    enrolments_api.router,
    suites_api.router,
    checkpoint_scores_api.router,  # before checkpoints: /models/{name}/checkpoints/scores is not a checkpoint
    checkpoints.router,
    exports_api.router,
    servers_api.router,
]

DESCRIPTION = """Catalogue, eval runs and leaderboards of the VLM evaluation service, served by Airflow's
api-server. Authenticate like Airflow's own API: `POST /auth/token` with `{"username", "password"}`, then
`Authorization: Bearer <access_token>`. Creating tasks/models, triggering and cancelling need the right to
trigger the `eval_run` DAG. Lists are `{data, count}` with `limit`/`offset`."""


def create_app() -> FastAPI:
    app = FastAPI(
        title="VLM evals API",
        version="1",
        description=DESCRIPTION,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,  # served below, behind authentication
        dependencies=[Depends(requires_authenticated())],
    )
    for router in ROUTERS:
        app.include_router(router)
    errors.install(app)

    @app.get("/openapi.json", include_in_schema=False)
    def openapi(request: Request) -> JSONResponse:
        doc: dict[str, Any] = copy.deepcopy(app.openapi())
        doc["servers"] = [{"url": api_root(request)}]
        return JSONResponse(doc)

    @app.get("/docs", include_in_schema=False)
    def docs(request: Request) -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=f"{api_root(request)}/openapi.json", title="VLM evals API")

    return app
